//! The per-epoch record fit returns, keyed like Keras's `history.history`, with learning-curve plots
//! (SVG, PNG) and JSON / CSV serialization.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Loss and metric values per epoch: `loss`, `<metric>`, `val_loss`, `val_<metric>` (and
/// `learning_rate` with ReduceLROnPlateau).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    keys: Vec<String>,
    values: Vec<Vec<f32>>,
    /// The epoch EarlyStopping judged best (0-based), when it ran.
    #[serde(default)]
    pub best_epoch: Option<usize>,
    /// The epoch (0-based) after which a callback stopped training, when one did.
    #[serde(default)]
    pub stopped_epoch: Option<usize>,
    /// Why training stopped early (the callback's words, naming the epoch), when it did.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Where each epoch's time went, when the fit was profiled ([`Fit::profile`](crate::Fit::profile),
    /// `WGFIT_PROFILE=1`); empty otherwise. A sweep's members share their plans' dispatches, so
    /// each holds the whole fit's profile. Not written by `to_json` / `to_csv`.
    #[serde(skip)]
    pub profile: Vec<crate::profile::EpochProfile>,
}

impl History {
    /// Appends `value` to `key`; a key first seen after some epochs is padded with NaN before.
    pub(crate) fn push(&mut self, key: &str, value: f32) {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => self.values[i].push(value),
            None => {
                let before = self.values.iter().map(Vec::len).max().unwrap_or(0).saturating_sub(1);
                self.keys.push(key.to_string());
                let mut v = vec![f32::NAN; before];
                v.push(value);
                self.values.push(v);
            }
        }
    }

    /// Appends one epoch's logs: every key of `logs`, and NaN for the known keys the epoch did not
    /// record (the `val_` keys of an epoch without validation under `validation_freq`), so every
    /// column keeps one value per epoch.
    pub(crate) fn push_epoch(&mut self, logs: &crate::callbacks::Logs) {
        let epoch = self.epochs();
        for (k, v) in logs.iter() {
            self.push(k, v);
        }
        for column in self.values.iter_mut() {
            if column.len() == epoch {
                column.push(f32::NAN);
            }
        }
    }

    /// The values of `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.keys.iter().position(|k| k == key).map(|i| self.values[i].as_slice())
    }

    /// The keys, in Keras's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }

    /// The last epoch's value of `key`.
    pub fn last(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(|v| v.last().copied())
    }

    /// The values of `key`, or an error naming the keys there are.
    pub fn require(&self, key: &str) -> Result<&[f32]> {
        self.get(key)
            .ok_or_else(|| Error::State(format!("History has no key {key:?}; it has {}", self.keys.join(", "))))
    }

    /// `key`'s value at the best epoch (EarlyStopping's), or `None` when there is no best epoch.
    pub fn at_best(&self, key: &str) -> Option<f32> {
        self.best_epoch.and_then(|e| self.get(key).and_then(|v| v.get(e).copied()))
    }

    /// JSON: `{"keys": [...], "values": [[...]...], "best_epoch": .., "stopped_epoch": .., "stop_reason": ..}`.
    /// Non-finite values are written as `null` (JSON has no NaN) and read back as NaN.
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            keys: &'a [String],
            values: Vec<Vec<Option<f32>>>,
            best_epoch: Option<usize>,
            stopped_epoch: Option<usize>,
            stop_reason: &'a Option<String>,
        }
        let out = Out {
            keys: &self.keys,
            values: self.values.iter().map(|v| v.iter().map(|x| x.is_finite().then_some(*x)).collect()).collect(),
            best_epoch: self.best_epoch,
            stopped_epoch: self.stopped_epoch,
            stop_reason: &self.stop_reason,
        };
        serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".into())
    }

    /// Reads what [`History::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<History> {
        #[derive(serde::Deserialize)]
        struct In {
            keys: Vec<String>,
            values: Vec<Vec<Option<f32>>>,
            #[serde(default)]
            best_epoch: Option<usize>,
            #[serde(default)]
            stopped_epoch: Option<usize>,
            #[serde(default)]
            stop_reason: Option<String>,
        }
        let fmt = |detail: String| Error::Format { path: PathBuf::from("history JSON"), detail };
        let h: In = serde_json::from_str(text).map_err(|e| fmt(e.to_string()))?;
        if h.keys.len() != h.values.len() {
            return Err(fmt(format!("{} keys but {} value lists", h.keys.len(), h.values.len())));
        }
        Ok(History {
            keys: h.keys,
            values: h.values.into_iter().map(|v| v.into_iter().map(|x| x.unwrap_or(f32::NAN)).collect()).collect(),
            best_epoch: h.best_epoch,
            stopped_epoch: h.stopped_epoch,
            stop_reason: h.stop_reason,
            profile: Vec::new(),
        })
    }

    /// CSV with a header `epoch,<keys>` and one row per epoch (epochs from 0, like Keras's CSVLogger).
    pub fn to_csv(&self) -> String {
        let mut out = String::from("epoch");
        for k in &self.keys {
            out.push(',');
            out.push_str(k);
        }
        out.push('\n');
        for e in 0..self.epochs() {
            out.push_str(&e.to_string());
            for v in &self.values {
                out.push(',');
                if let Some(x) = v.get(e) {
                    out.push_str(&x.to_string());
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the JSON form to `path` (atomically: a temporary file, then a rename).
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), self.to_json().as_bytes())
    }

    /// Writes the CSV form to `path` (atomically).
    pub fn save_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), self.to_csv().as_bytes())
    }

    /// The metric pairs to plot, one panel each: `(train key, Some(val key))`, loss first.
    fn panels(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for k in &self.keys {
            if k.starts_with("val_") && self.keys.iter().any(|t| Some(t.as_str()) == k.strip_prefix("val_")) {
                continue;
            }
            let val = format!("val_{k}");
            let has_val = !k.starts_with("val_") && self.keys.contains(&val);
            out.push((k.clone(), has_val.then_some(val)));
        }
        out
    }

    /// Draws the learning curves: one panel per metric pair (loss/val_loss, mae/val_mae...), epochs
    /// (from 1) on x, labelled axes, a legend, and the best epoch marked when EarlyStopping ran.
    /// The format follows the extension: `.svg` (needs no font) or `.png` (text drawn with a small
    /// DejaVu Sans subset compiled into the library). The file is written atomically.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if self.epochs() == 0 || self.keys.is_empty() {
            return Err(Error::Format { path: path.to_path_buf(), detail: "the History has no epochs to plot".into() });
        }
        let n = self.epochs();
        let panels: Vec<Panel> = self
            .panels()
            .into_iter()
            .map(|(train, val)| {
                let series = std::iter::once(train.as_str())
                    .chain(val.as_deref())
                    .filter_map(|k| self.get(k).map(|v| (k.to_string(), v)))
                    .collect();
                let marker = self.best_epoch.filter(|b| *b < n).map(|b| {
                    let best_key = val.as_deref().unwrap_or(train.as_str());
                    let label = match self.get(best_key).and_then(|v| v.get(b)) {
                        Some(v) => format!("best epoch {} ({best_key} {v:.4})", b + 1),
                        None => format!("best epoch {}", b + 1),
                    };
                    (b, label)
                });
                Panel { title: train, series, marker }
            })
            .collect();
        render(path, &panels, n)
    }

    /// Draws several runs' curves over each other for comparison (e.g. the best trials of a
    /// hyperparameter search): one panel per key of `keys`, one labelled line per run that has the
    /// key. Same formats and atomic write as [`History::plot`].
    pub fn plot_compare(runs: &[(&str, &History)], keys: &[&str], path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let n = runs.iter().map(|(_, h)| h.epochs()).max().unwrap_or(0);
        let panels: Vec<Panel> = keys
            .iter()
            .map(|&key| Panel {
                title: key.to_string(),
                series: runs.iter().filter_map(|(label, h)| h.get(key).map(|v| (label.to_string(), v))).collect(),
                marker: None,
            })
            .filter(|p| !p.series.is_empty())
            .collect();
        if n == 0 || panels.is_empty() {
            let detail = format!("no run has epochs of {} to plot", keys.join(", "));
            return Err(Error::Format { path: path.to_path_buf(), detail });
        }
        render(path, &panels, n)
    }
}

/// One panel of a learning-curve plot: a title (the History key of its y axis), labelled curves,
/// and an epoch (0-based) to mark with its legend text.
struct Panel<'a> {
    title: String,
    series: Vec<(String, &'a [f32])>,
    marker: Option<(usize, String)>,
}

/// Line colors, in order (matplotlib's tab10, so the first two are Keras plots' usual blue/orange).
const COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Writes `panels` over `epochs` epochs to `path`, as SVG or PNG by its extension (atomically).
fn render(path: &Path, panels: &[Panel], epochs: usize) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let fmt = |detail: String| Error::Format { path: path.to_path_buf(), detail };
    let (w, h) = (640u32, 320 * panels.len() as u32);
    register_font();
    match ext.as_deref() {
        Some("svg") => {
            let mut svg = String::new();
            {
                let root = plotters::prelude::SVGBackend::with_string(&mut svg, (w, h));
                draw(root, panels, epochs).map_err(|e| fmt(format!("drawing the plot: {e}")))?;
            }
            write_atomic(path, svg.as_bytes())
        }
        Some("png") => {
            // plotters writes the PNG to a file and picks the format from its extension: draw
            // to a temporary .png beside `path`, then write its bytes atomically.
            let (_, tmp) = crate::io::temp_beside(path, ".png")?;
            let drawn = {
                let root = plotters::prelude::BitMapBackend::new(&tmp, (w, h));
                draw(root, panels, epochs)
            };
            let result = drawn.map_err(|e| fmt(format!("drawing the plot: {e}"))).and_then(|_| {
                let png = std::fs::read(&tmp).map_err(|source| Error::Io { path: tmp.clone(), source })?;
                write_atomic(path, &png)
            });
            let _ = std::fs::remove_file(&tmp);
            result
        }
        _ => Err(fmt("the plot's file name must end in .svg or .png".into())),
    }
}

fn draw<DB>(backend: DB, panels: &[Panel], n: usize) -> std::result::Result<(), String>
where
    DB: plotters::prelude::DrawingBackend,
    DB::ErrorType: 'static,
{
    use plotters::prelude::*;
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let areas = root.split_evenly((panels.len(), 1));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let title = panel.title.as_str();
        let finite = panel.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo.is_finite() { (lo as f64, hi as f64) } else { (0.0, 1.0) };
        let pad = if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.05 };
        let (lo, hi) = (lo - pad, hi + pad);
        let x_hi = (n as f64).max(2.0);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..x_hi, lo..hi)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .y_desc(title)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|x| e(&x))?;
        for (i, (label, values)) in panel.series.iter().enumerate() {
            let (r, g, b) = COLORS[i % COLORS.len()];
            let color = RGBColor(r, g, b);
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(j, v)| (j as f64 + 1.0, *v as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        if let Some((b, label)) = &panel.marker {
            let x = *b as f64 + 1.0;
            let red = RGBColor(214, 39, 40);
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(x, lo), (x, hi)], red.stroke_width(1))))
                .map_err(|x| e(&x))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(1)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(if crate::callbacks::Mode::Auto.maximizes(title) {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// Registers the bundled DejaVu Sans subset (printable ASCII; 13 KB; license in
/// assets/DejaVuSans-LICENSE.txt) as plotters' sans-serif font, once.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-ascii.ttf");
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT);
    });
}

impl std::ops::Index<&str> for History {
    type Output = [f32];

    /// Panics on a missing key, like indexing a map; use [`History::get`] to ask.
    fn index(&self, key: &str) -> &[f32] {
        match self.get(key) {
            Some(v) => v,
            None => panic!("History has no key {key:?}; it has {}", self.keys.join(", ")),
        }
    }
}
