//! End-to-end tests of `wgfit tune` on the shipped CSVs, on the CPU path with few epochs: a trial
//! trains exactly as `wgfit train` with its settings, shards merge into the unsharded result,
//! k-fold trials and their spread, random search, the usage and collect errors, and `--stream`
//! giving the in-memory results, fingerprints and errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::cli::{s, shipped};

/// The environment variables that choose a shard; cleared so a test run inside a Slurm array or a
/// Kubernetes Job is not sharded by accident.
const SHARD_VARS: [&str; 5] =
    ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "WGFIT_SHARDS"];

/// `common::cli::wgfit` with no shard variables but `env`.
fn wgfit(env: &[(&str, &str)]) -> Command {
    let mut c = common::cli::wgfit();
    for v in SHARD_VARS {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn concrete() -> String {
    s(&shipped("concrete.csv")).to_string()
}

/// Runs with `env` set; returns (exit code, stdout, stderr).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = wgfit(env).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs, expects success and exactly one JSON object on stdout.
fn json_env(args: &[&str], env: &[(&str, &str)]) -> Value {
    let (code, stdout, stderr) = run_env(args, env);
    assert_eq!(code, 0, "wgfit {args:?} failed: {stderr}");
    assert_eq!(stdout.trim().lines().count(), 1, "one line of JSON on stdout: {stdout:?}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"))
}

fn json(args: &[&str]) -> Value {
    json_env(args, &[])
}

/// Runs, expects exit code `code` and a one-line error (no panic); returns stderr's last line.
fn fails(code: i32, args: &[&str]) -> String {
    let (got, stdout, stderr) = run_env(args, &[]);
    assert_eq!(got, code, "wgfit {args:?}: expected exit {code}; stdout {stdout:?} stderr {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim().lines().last().unwrap_or("").to_string()
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgfit-cli-tune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn trials(v: &Value) -> &Vec<Value> {
    v["trials"].as_array().unwrap_or_else(|| panic!("no trials: {v}"))
}

/// The options every test's runs share (small and fast).
fn common<'a>(data: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec!["--data", data, "--epochs", epochs, "--batch-size", "64", "--device", "cpu", "--verbose", "0"]
}

#[test]
fn each_trial_trains_exactly_as_train_with_its_settings() {
    let data = concrete();
    let dir = tmp_dir("exact");
    let best_file = dir.join("best.json");
    let shared = [common(&data, "5"), vec!["--validation-split", "0.2", "--patience", "1"]].concat();
    let mut args = vec!["tune", "--layers", "8", "--lr", "0.01,0.001", "--dropout", "0.1", "--seeds", "2"];
    args.extend(["--optimizer", "adam,sgd", "--momentum", "0.9", "--json", "--save-best", best_file.to_str().unwrap()]);
    args.extend(&shared);
    let v = json(&args);
    let list = trials(&v);
    assert_eq!(list.len(), 8, "2 optimizers x 2 lrs x 2 seeds");
    let mut seen = Vec::new();
    for t in list {
        let label = t["label"].as_str().unwrap();
        let seed = t["seed"].to_string();
        assert!(label.contains("--dropout 0.1"), "{label}");
        let mut train = vec!["train", "--json"];
        train.extend(label.split_whitespace());
        train.extend(["--seed", seed.as_str()]);
        train.extend(&shared);
        let alone = json(&train);
        assert_eq!(t["history"], alone["history"], "trial {} = `wgfit {}`", t["trial"], train.join(" "));
        assert_eq!(t["fold"], Value::Null);
        assert_eq!(t["monitor"], "val_loss");
        let vl: Vec<f64> = t["history"]["val_loss"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let best = vl.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(t["best"].as_f64().unwrap(), best, "best is the lowest val_loss");
        assert_eq!(vl[t["best_epoch"].as_u64().unwrap() as usize], best);
        seen.push((t["settings"]["optimizer"].as_str().unwrap().to_string(), t["settings"]["lr"].to_string(), seed));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "every combination once: {seen:?}");
    assert_eq!(list[0]["settings"]["lr"], 0.01, "settings as written");
    assert_eq!(list[0]["settings"]["momentum"], Value::Null, "adam has no momentum");

    // The leaderboard: 4 settings, 2 seeds each, sorted by the mean of their best val_loss.
    let board = v["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 4);
    let means: Vec<f64> = board.iter().map(|r| r["mean"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] <= w[1]), "{means:?}");
    for r in board {
        assert_eq!(r["trials"], 2);
        assert!(r["std"].as_f64().unwrap() >= 0.0);
    }
    assert!(v["timing"]["wall_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["device"]["kind"], "cpu");

    // --save-best saved the best trial's model, as `train --save` with its settings saves it.
    let best = list.iter().min_by(|a, b| a["best"].as_f64().unwrap().total_cmp(&b["best"].as_f64().unwrap())).unwrap();
    let alone_file = dir.join("alone.json");
    let seed = best["seed"].to_string();
    let mut train = vec!["train", "--save", alone_file.to_str().unwrap(), "--seed", seed.as_str()];
    train.extend(best["label"].as_str().unwrap().split_whitespace());
    train.extend(&shared);
    let (code, _, stderr) = run_env(&train, &[]);
    assert_eq!(code, 0, "{stderr}");
    let read = |p: &Path| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap();
    let (saved, alone) = (read(&best_file), read(&alone_file));
    assert_eq!(saved["layers"], alone["layers"], "the same weights");
    assert_eq!(saved["preprocessing"], alone["preprocessing"]);
    assert_eq!(saved["compile"], alone["compile"]);
}

#[test]
fn shards_run_apart_then_collect_into_the_unsharded_result() {
    let data = concrete();
    let dir = tmp_dir("shards");
    let out = dir.join("results");
    let out_s = out.to_str().unwrap();
    let mut base = vec!["tune", "--layers", "8", "--layers", "4,4", "--lr", "0.01,0.003", "--seeds", "2"];
    base.extend(common(&data, "4"));
    base.extend(["--validation-split", "0.25"]);
    let whole = json(&[base.clone(), vec!["--json"]].concat());
    assert_eq!(trials(&whole).len(), 8);

    // Three processes, each picking its shard a different way: the flag, a Slurm array task
    // (numbered from 1), and a Kubernetes Indexed Job.
    let sharded = [base.clone(), vec!["--json", "--out", out_s]].concat();
    let parts = [
        json_env(&[sharded.clone(), vec!["--shard", "0/3"]].concat(), &[]),
        json_env(
            &sharded,
            &[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")],
        ),
        json_env(&sharded, &[("JOB_COMPLETION_INDEX", "2"), ("WGFIT_SHARDS", "3")]),
    ];
    for (i, part) in parts.iter().enumerate() {
        let indices: Vec<u64> = trials(part).iter().map(|t| t["trial"].as_u64().unwrap()).collect();
        let expected: Vec<u64> = (0..8).filter(|t| t % 3 == i as u64).collect();
        assert_eq!(indices, expected, "shard {i} runs trials index % 3 == {i}");
        assert!(out.join(format!("shard-{i}-of-3.json")).is_file());
    }

    let merged = json(&["tune", "--collect", out_s, "--json"]);
    assert_eq!(merged["trials"], whole["trials"], "the same trials, histories and bests");
    assert_eq!(merged["leaderboard"], whole["leaderboard"]);
    let (code, text, stderr) = run_env(&["tune", "--collect", out_s], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("val_loss mean") && text.contains("best trial"), "{text}");

    // Collect's errors name the problem.
    let collect_err = |d: &Path| {
        let (code, _, stderr) = run_env(&["tune", "--collect", d.to_str().unwrap()], &[]);
        assert_eq!(code, 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    };
    let copy = dir.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for i in [0, 2] {
        std::fs::copy(out.join(format!("shard-{i}-of-3.json")), copy.join(format!("shard-{i}-of-3.json"))).unwrap();
    }
    let e = collect_err(&copy);
    assert!(e.contains("missing shards") && e.contains(": 1 of"), "{e}");
    std::fs::copy(out.join("shard-0-of-3.json"), copy.join("shard-0-of-3-again.json")).unwrap();
    let e = collect_err(&copy);
    assert!(e.contains("duplicate shard 0"), "{e}");
    std::fs::remove_file(copy.join("shard-0-of-3-again.json")).unwrap();
    // A shard of another search (another learning rate list) does not mix in.
    let other = dir.join("other");
    let mut different = vec!["tune", "--layers", "8", "--layers", "4,4", "--lr", "0.01,0.002", "--seeds", "2"];
    different.extend(common(&data, "4"));
    different.extend(["--validation-split", "0.25", "--shard", "1/3", "--out", other.to_str().unwrap()]);
    let (code, _, stderr) = run_env(&different, &[]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::copy(other.join("shard-1-of-3.json"), copy.join("shard-1-of-3.json")).unwrap();
    let e = collect_err(&copy);
    assert!(e.contains("different searches"), "{e}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = collect_err(&empty);
    assert!(e.contains("no shard files"), "{e}");
}

#[test]
fn folds_give_one_trial_per_fold_and_a_spread() {
    let data = concrete();
    let mut args = vec!["tune", "--layers", "8", "--lr", "0.01,0.001", "--folds", "3", "--json"];
    args.extend(common(&data, "3"));
    let v = json(&args);
    let list = trials(&v);
    assert_eq!(list.len(), 6, "2 settings x 3 folds");
    for (i, t) in list.iter().enumerate() {
        assert_eq!(t["fold"], (i % 3) as u64, "folds 0..2 of each setting");
        assert_eq!(t["setting"], (i / 3) as u64);
        assert_eq!(t["monitor"], "val_loss", "each fold validates on its slice");
    }
    // A fold's validation rows differ, so its history does too.
    assert_ne!(list[0]["history"]["val_loss"], list[1]["history"]["val_loss"]);
    let board = v["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 2);
    for r in board {
        let s = r["setting"].as_u64().unwrap() as usize;
        let bests: Vec<f64> = list[s * 3..s * 3 + 3].iter().map(|t| t["best"].as_f64().unwrap()).collect();
        let mean = bests.iter().sum::<f64>() / 3.0;
        let std = (bests.iter().map(|b| (b - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert_eq!(r["trials"], 3);
        assert!((r["mean"].as_f64().unwrap() - mean).abs() < 1e-4 * mean.abs().max(1.0), "{r} vs {mean}");
        assert!((r["std"].as_f64().unwrap() - std).abs() < 1e-4 * std.max(1.0), "{r} vs {std}");
        assert!(std > 0.0);
    }
}

#[test]
fn random_search_draws_a_repeatable_subset_of_the_grid() {
    let data = concrete();
    let mut args = vec!["tune", "--layers", "4", "--layers", "8", "--lr", "0.1,0.01,0.001", "--trials", "3"];
    args.extend(["--search-seed", "7", "--json"]);
    args.extend(common(&data, "1"));
    let labels = |v: &Value| trials(v).iter().map(|t| t["label"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let first = labels(&json(&args));
    assert_eq!(first.len(), 3);
    assert_eq!(first, labels(&json(&args)), "the same draw for the same --search-seed");
    let mut distinct = first.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "no setting twice: {first:?}");
}

#[test]
fn bad_grids_folds_and_shards_are_usage_errors() {
    let data = concrete();
    let with = |extra: &[&'static str]| [vec!["tune"], common(&data, "1"), extra.to_vec()].concat();
    let cases: [(&[&'static str], &str); 9] = [
        (&["--lr", ""], "--lr is empty"),
        (&["--dropout", "0.1,,0.2"], "empty item"),
        (&["--batchnorm", "maybe"], "--batchnorm"),
        (&["--folds", "5000"], "more folds than the 1030 training rows"),
        (&["--folds", "1"], "--folds must be at least 2"),
        (&["--momentum", "0.9"], "--momentum applies to sgd only"),
        (&["--shard", "3/3"], "out of range"),
        (&["--shard", "two"], "--shard must be I/N"),
        (&["--shards", "4"], "JOB_COMPLETION_INDEX"),
    ];
    for (extra, says) in cases {
        let e = fails(2, &with(extra));
        assert!(e.contains(says), "{extra:?}: {e}");
    }
    let e = fails(2, &with(&["--folds", "3", "--validation-split", "0.2"]));
    assert!(e.contains("--validation-split") || e.contains("--folds"), "{e}");
    let e = fails(2, &["tune", "--lr", "0.1"]);
    assert!(e.contains("--data"), "{e}");
}

#[test]
fn rmsprop_and_adamw_trials_train_as_train_does() {
    let data = concrete();
    let mut args = vec!["tune", "--layers", "8", "--optimizer", "rmsprop,adamw", "--json"];
    args.extend(common(&data, "2"));
    args.extend(["--validation-split", "0.2"]);
    let v = json(&args);
    let list = trials(&v);
    assert_eq!(list.len(), 2);
    for t in list {
        let label = t["label"].as_str().unwrap();
        let mut train = vec!["train", "--json"];
        train.extend(label.split_whitespace());
        train.extend(common(&data, "2"));
        train.extend(["--validation-split", "0.2"]);
        let alone = json(&train);
        assert_eq!(t["history"], alone["history"], "trial = `wgfit train {label}`");
    }
    assert_eq!(list[0]["settings"]["optimizer"], "rmsprop");
    assert_eq!(list[1]["settings"]["optimizer"], "adamw");
    assert!(fails(2, &["tune", "--data", &data, "--optimizer", "adam,adagrad"]).contains("adamw, rmsprop"));
}

/// `tune ARGS --json --save-best SAVE` (ARGS after "tune") without and with `--stream`: both
/// succeed and print the same JSON but for the timing (trials, histories, bests, leaderboard,
/// device), and save the same best model, byte for byte. Returns the JSON.
fn same_with_and_without_stream(args: &[&str], save: &Path) -> Value {
    let mut outs = Vec::new();
    for stream in [false, true] {
        let mut all = [vec!["tune"], args.to_vec(), vec!["--json", "--save-best", s(save)]].concat();
        if stream {
            all.push("--stream");
        }
        let mut v = json(&all);
        v.as_object_mut().unwrap().remove("timing").expect("timing");
        outs.push((v, std::fs::read(save).unwrap()));
        std::fs::remove_file(save).unwrap();
    }
    let (streamed, memory) = (outs.pop().unwrap(), outs.pop().unwrap());
    assert_eq!(streamed.0, memory.0, "{args:?}: --stream changed the results");
    assert!(streamed.1 == memory.1, "{args:?}: --stream saved another best model");
    memory.0
}

/// A 2x2 grid (two architectures, two learning rates) with two seeds each.
fn small_grid(data: &str) -> Vec<&str> {
    let mut args = vec!["--layers", "8", "--layers", "4,4", "--lr", "0.01,0.001", "--seeds", "2"];
    args.extend(common(data, "3"));
    args
}

#[test]
fn stream_gives_the_in_memory_trials_with_a_validation_split_and_with_folds() {
    let data = concrete();
    let save = tmp_dir("stream").join("best.json");
    let v = same_with_and_without_stream(&[small_grid(&data), vec!["--validation-split", "0.25"]].concat(), &save);
    assert_eq!(trials(&v).len(), 8, "4 settings x 2 seeds");
    assert_eq!(v["leaderboard"].as_array().unwrap().len(), 4);
    assert!(trials(&v).iter().all(|t| t["monitor"] == "val_loss" && t["history"]["val_loss"].is_array()));

    let v = same_with_and_without_stream(&[small_grid(&data), vec!["--folds", "3"]].concat(), &save);
    assert_eq!(trials(&v).len(), 24, "4 settings x 2 seeds x 3 folds");
    assert_ne!(trials(&v)[0]["history"]["val_loss"], trials(&v)[1]["history"]["val_loss"], "folds differ");
}

#[test]
fn shards_run_with_and_without_stream_collect_into_the_unsharded_result() {
    let data = concrete();
    let dir = tmp_dir("stream-shards");
    let out = dir.join("results");
    let out_s = out.to_str().unwrap();
    for folds in [false, true] {
        let _ = std::fs::remove_dir_all(&out);
        let split: &[&str] = if folds { &["--folds", "3"] } else { &["--validation-split", "0.25"] };
        let base = [vec!["tune"], small_grid(&data), split.to_vec()].concat();
        let whole = json(&[base.clone(), vec!["--json"]].concat());
        let streamed = [base.clone(), vec!["--shard", "0/2", "--out", out_s, "--stream"]].concat();
        let (code, _, stderr) = run_env(&streamed, &[]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("(streamed from disk)"), "{stderr}");
        let (code, _, stderr) = run_env(&[base.clone(), vec!["--shard", "1/2", "--out", out_s]].concat(), &[]);
        assert_eq!(code, 0, "{stderr}");
        let fingerprint = |i: usize| {
            let text = std::fs::read_to_string(out.join(format!("shard-{i}-of-2.json"))).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["fingerprint"].clone()
        };
        assert_eq!(fingerprint(0), fingerprint(1), "the same fingerprint with and without --stream");
        let merged = json(&["tune", "--collect", out_s, "--json"]);
        assert_eq!(merged["trials"], whole["trials"], "folds {folds}: the same trials, histories and bests");
        assert_eq!(merged["leaderboard"], whole["leaderboard"], "folds {folds}");
    }
    // Other data under --stream is another search: its shard does not mix in.
    let other = dir.join("other.csv");
    let text = std::fs::read_to_string(concrete()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&other, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let mut args = vec!["tune", "--layers", "8", "--layers", "4,4", "--lr", "0.01,0.001", "--seeds", "2"];
    args.extend(common(other.to_str().unwrap(), "3"));
    args.extend(["--folds", "3", "--shard", "0/2", "--out", out_s, "--stream"]);
    let (code, _, stderr) = run_env(&args, &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run_env(&["tune", "--collect", out_s], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("different searches"), "{stderr}");
}

#[test]
fn stream_gives_the_same_errors() {
    let data = concrete();
    let dir = tmp_dir("stream-errors");
    let bad = dir.join("bad.csv");
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<&str> = text.lines().take(80).collect();
    lines[50] = "1,2,3,oops,5,6,7,8,9";
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let tiny = dir.join("tiny.csv");
    std::fs::write(&tiny, "a,b\n1,2\n2,3\n").unwrap();
    let missing = dir.join("missing.csv");
    let cases: [(i32, String, &[&str], &str); 6] = [
        (2, data.clone(), &["--folds", "5000"], "more folds than the 1030 training rows"),
        (2, s(&tiny).to_string(), &["--folds", "3"], "--folds 3: more folds than the 2 training rows"),
        (1, s(&missing).to_string(), &[], "missing.csv"),
        (1, data.clone(), &["--valid", s(&missing)], "missing.csv"),
        (1, data.clone(), &["--target", "nope"], "target column \"nope\" not found"),
        (1, s(&bad).to_string(), &[], "\"oops\" is not a number"),
    ];
    for (code, file, extra, says) in cases {
        let args = [vec!["tune", "--layers", "8"], common(&file, "1"), extra.to_vec()].concat();
        let memory = fails(code, &args);
        assert!(memory.contains(says), "{extra:?}: {memory}");
        let streamed = fails(code, &[args, vec!["--stream"]].concat());
        assert_eq!(streamed, memory, "{file} {extra:?}: --stream gave another error");
    }
}
