//! The CPU reference backend: buffers are vectors, launches call the twins in `kernels`.

pub(crate) mod kernels;
pub(crate) mod parallel;
pub(crate) mod product;

use multiversion::multiversion;
use std::ops::Range;
use std::time::Instant;

use super::args::{Args, MatmulArgs, Ones};
use super::kernels::{Access, Kernel};
use super::{check_bindings, member_stride, Backend, BufId, Launch, OpId};
use crate::error::{Error, Result};
use crate::profile::{EpochProfile, ProfileClock};
use product::View;

/// The profiler's tally on the CPU path: (calls, seconds) per kernel (in `Kernel::ALL` order),
/// copies last. One per thread, summed after the run.
type Tally = [(u64, f64); Kernel::ALL.len() + 1];

/// Buffers of a plan of `members` models: a shared buffer is one vector; a member buffer is one
/// vector per member, kept in that member's *bank*, so that a thread can own a range of members
/// outright. Members never interact, so a recording runs member by member (each member's whole
/// epoch in turn, its working set warm in cache), members split across threads.
pub(crate) struct CpuBackend {
    members: usize,
    /// Per buffer: `None` shared, `Some(stride)` a member buffer.
    strides: Vec<Option<usize>>,
    /// Shared buffers' values (empty for member buffers).
    shared: Vec<Vec<f32>>,
    /// `banks[m][buf]`: member m's block of each member buffer (empty for shared buffers).
    banks: Vec<Vec<Vec<f32>>>,
    ops: Vec<(Kernel, Vec<BufId>)>,
    /// Profile each run (`Backend::set_profiling`), and the last run's tally until taken.
    profiling: bool,
    profiled: Option<(Tally, f64)>,
    /// The most memory one dataset may take before it streams (`Backend::max_data_bytes`).
    max_data_bytes: Option<usize>,
}

/// What one member's launches read and write: its bank, and everything shared.
struct MemberView<'a> {
    strides: &'a [Option<usize>],
    shared: &'a [Vec<f32>],
    ops: &'a [(Kernel, Vec<BufId>)],
}

impl MemberView<'_> {
    /// Runs `launches` for member `member`, whose bank is `bank`; with a `tally` (profiling),
    /// each launch timed into it.
    fn run(
        &self,
        member: usize,
        bank: &mut [Vec<f32>],
        launches: &[Launch],
        mut tally: Option<&mut Tally>,
    ) -> Result<()> {
        for l in launches {
            let started = tally.is_some().then(Instant::now);
            let slot = match *l {
                Launch::Run { op, args } => {
                    self.launch(bank, op, &args)?;
                    self.ops[op.0].0 as usize
                }
                Launch::Copy { src, src_off, dst, dst_off, len, member: only } => {
                    if only.is_some_and(|m| m != member) {
                        continue;
                    }
                    let (s, d) = (src.0, dst.0);
                    if self.strides[s].is_none() || self.strides[d].is_none() || s == d {
                        return Err(Error::Internal("a copy runs between two distinct member buffers".into()));
                    }
                    if src_off + len > bank[s].len() || dst_off + len > bank[d].len() {
                        return Err(Error::Internal(format!("copy of {len} values past a member block")));
                    }
                    let (from, to) = if s < d {
                        let (lo, hi) = bank.split_at_mut(d);
                        (&lo[s], &mut hi[0])
                    } else {
                        let (lo, hi) = bank.split_at_mut(s);
                        (&hi[0], &mut lo[d])
                    };
                    to[dst_off..dst_off + len].copy_from_slice(&from[src_off..src_off + len]);
                    Kernel::ALL.len()
                }
                Launch::Fill { .. } => return Err(Error::Internal("a chunk fill reached the CPU backend".into())),
            };
            if let (Some(t), Some(started)) = (tally.as_deref_mut(), started) {
                t[slot].0 += 1;
                t[slot].1 += started.elapsed().as_secs_f64();
            }
        }
        Ok(())
    }

    fn launch(&self, bank: &mut [Vec<f32>], op: OpId, args: &Args) -> Result<()> {
        let (kernel, bufs) = self.ops.get(op.0).ok_or_else(|| Error::Internal(format!("no op {op:?}")))?;
        if args.kernel() != *kernel {
            return Err(Error::Internal(format!("{} launched with {:?}'s arguments", kernel.entry(), args.kernel())));
        }
        let spec = kernel.bindings();
        // Writable buffers are moved out for the call, so reads can borrow the rest (fixed arrays:
        // no allocation per launch, which a sweep makes thousands of per epoch).
        let mut taken: [Vec<f32>; 4] = Default::default();
        let mut n_taken = 0;
        for (i, (_, access)) in spec.iter().enumerate() {
            if *access == Access::ReadWrite {
                taken[n_taken] = std::mem::take(&mut bank[bufs[i].0]);
                n_taken += 1;
            }
        }
        {
            let bank: &[Vec<f32>] = bank;
            let mut reads: [&[f32]; 6] = [&[]; 6];
            for (slot, (i, _)) in spec.iter().enumerate().filter(|(_, (_, a))| *a == Access::Read).enumerate() {
                let b = bufs[i].0;
                reads[slot] = if self.strides[b].is_some() { bank[b].as_slice() } else { self.shared[b].as_slice() };
            }
            let w = &mut taken[..n_taken];
            use kernels as k;
            match args {
                Args::Gather(p) => {
                    let (xb, yb) = w.split_at_mut(1);
                    k::gather(p, reads[0], reads[1], reads[2], &mut xb[0], &mut yb[0])
                }
                Args::Matmul(p) => matmul(p, reads[0], reads[1], &mut w[0], reads[2]),
                Args::ActivationForward(p) => k::activation_forward(p, reads[0], &mut w[0], reads[1]),
                Args::ActivationBackward(p) => k::activation_backward(p, reads[0], &mut w[0], reads[1]),
                Args::Loss(p) => {
                    let (g, a) = w.split_at_mut(1);
                    k::loss(p, reads[0], reads[1], &mut g[0], &mut a[0])
                }
                Args::Penalty(p) => {
                    let [grad, acc] = &mut w[..] else { unreachable!("two writable buffers") };
                    k::penalty(p, reads[0], grad, acc)
                }
                Args::Confusion(p) => k::confusion(p, reads[0], reads[1], reads[2], &mut w[0]),
                Args::Adam(p) => {
                    let [param, m, v, s] = &mut w[..] else { unreachable!("four writable buffers") };
                    k::adam(p, param, reads[0], m, v, reads[1], reads[2], s, reads[3])
                }
                Args::Sgd(p) => {
                    let [param, m, v, s] = &mut w[..] else { unreachable!("four writable buffers") };
                    k::sgd(p, param, reads[0], m, v, reads[1], reads[2], s, reads[3])
                }
                Args::Rmsprop(p) => {
                    let [param, m, v, s] = &mut w[..] else { unreachable!("four writable buffers") };
                    k::rmsprop(p, param, reads[0], m, v, reads[1], reads[2], s, reads[3])
                }
                Args::GradNorms(p) => {
                    let [grad, norms] = &mut w[..] else { unreachable!("two writable buffers") };
                    k::grad_norms(p, grad, norms, reads[0], reads[1])
                }
                Args::DropoutForward(p) => k::dropout_forward(p, reads[0], &mut w[0], reads[1]),
                Args::DropoutBackward(p) => k::dropout_backward(p, reads[0], &mut w[0], reads[1], reads[2]),
                Args::BatchNormTrain(p) => {
                    let [state, y, saved] = &mut w[..] else { unreachable!("three writable buffers") };
                    k::batchnorm_train(p, reads[0], reads[1], state, y, saved, reads[2])
                }
                Args::BatchNormInfer(p) => {
                    let [state, y] = &mut w[..] else { unreachable!("two writable buffers") };
                    k::batchnorm_infer(p, reads[0], reads[1], state, y)
                }
                Args::BatchNormBackward(p) => {
                    let [saved, dx, grads] = &mut w[..] else { unreachable!("three writable buffers") };
                    k::batchnorm_backward(p, reads[0], reads[1], saved, reads[2], dx, grads, reads[3])
                }
                Args::SoftmaxForward(p) => k::softmax_forward(p, &mut w[0]),
                Args::NormalizationForward(p) => k::normalization_forward(p, reads[0], reads[1], &mut w[0]),
                Args::NormalizationBackward(p) => k::normalization_backward(p, reads[0], reads[1], &mut w[0], reads[2]),
                Args::SoftmaxBackward(p) => k::softmax_backward(p, &mut w[0], reads[0]),
            }
        }
        let mut taken = taken.into_iter();
        for (i, (_, access)) in spec.iter().enumerate() {
            if *access == Access::ReadWrite {
                bank[bufs[i].0] = taken.next().unwrap_or_default();
            }
        }
        Ok(())
    }
}

impl CpuBackend {
    pub(crate) fn new(members: usize, max_data_bytes: Option<usize>) -> Self {
        let members = members.max(1);
        CpuBackend {
            max_data_bytes,
            members,
            strides: Vec::new(),
            shared: Vec::new(),
            banks: vec![Vec::new(); members],
            ops: Vec::new(),
            profiling: false,
            profiled: None,
        }
    }

    fn check(&self, id: BufId) -> Result<Option<usize>> {
        self.strides.get(id.0).copied().ok_or_else(|| Error::Internal(format!("no buffer {id:?}")))
    }

    fn push(&mut self, shared: Vec<f32>, stride: Option<usize>) -> Result<BufId> {
        for bank in &mut self.banks {
            let mut block = Vec::new();
            if let Some(len) = stride {
                block
                    .try_reserve_exact(len)
                    .map_err(|_| Error::Gpu(format!("out of host memory allocating {len} values per member")))?;
                block.resize(len, 0.0);
            }
            bank.push(block);
        }
        self.shared.push(shared);
        self.strides.push(stride);
        Ok(BufId(self.strides.len() - 1))
    }

    /// Threads to spread members over: one per core, with at least 4 members each (starting
    /// threads costs tens of microseconds a recording: a few small members are faster on one).
    fn threads(&self) -> usize {
        parallel::cores().min(self.members / 4).max(1)
    }
}

impl Backend for CpuBackend {
    fn members(&self) -> usize {
        self.members
    }

    fn create_buffer(&mut self, len: usize, _label: &str) -> Result<BufId> {
        let mut v = Vec::new();
        v.try_reserve_exact(len.max(1))
            .map_err(|_| Error::Gpu(format!("out of host memory allocating {len} values")))?;
        v.resize(len.max(1), 0.0);
        self.push(v, None)
    }

    fn create_member_buffer(&mut self, len: usize, _label: &str) -> Result<BufId> {
        self.push(Vec::new(), Some(member_stride(len)))
    }

    fn write(&mut self, buf: BufId, offset: usize, data: &[f32]) -> Result<()> {
        match self.check(buf)? {
            None => {
                let b = &mut self.shared[buf.0];
                let end = offset + data.len();
                if end > b.len() {
                    return Err(Error::Internal(format!("write of {end} values past a buffer of {}", b.len())));
                }
                b[offset..end].copy_from_slice(data);
            }
            Some(stride) => {
                if offset + data.len() > stride * self.members {
                    return Err(Error::Internal(format!(
                        "write of {} values at {offset} past a member buffer of {} x {stride}",
                        data.len(),
                        self.members
                    )));
                }
                let mut at = offset;
                let mut rest = data;
                while !rest.is_empty() {
                    let (m, i) = (at / stride, at % stride);
                    let n = rest.len().min(stride - i);
                    self.banks[m][buf.0][i..i + n].copy_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    at += n;
                }
            }
        }
        Ok(())
    }

    fn bind(&mut self, kernel: Kernel, buffers: &[BufId]) -> Result<OpId> {
        check_bindings(kernel, buffers)?;
        for (b, (_, access)) in buffers.iter().zip(kernel.bindings()) {
            if self.check(*b)?.is_none() && *access == Access::ReadWrite {
                return Err(Error::Internal(format!("{} writes a shared buffer {b:?}", kernel.entry())));
            }
        }
        self.ops.push((kernel, buffers.to_vec()));
        Ok(OpId(self.ops.len() - 1))
    }

    fn run(&mut self, launches: &[Launch], reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        let started = self.profiling.then(Instant::now);
        let mut tally: Tally = [(0, 0.0); Kernel::ALL.len() + 1];
        if !launches.is_empty() {
            let view = MemberView { strides: &self.strides, shared: &self.shared, ops: &self.ops };
            let threads = self.threads();
            let profiling = self.profiling;
            if threads <= 1 {
                for (m, bank) in self.banks.iter_mut().enumerate() {
                    view.run(m, bank, launches, profiling.then_some(&mut tally))?;
                }
            } else {
                let per = self.members.div_ceil(threads);
                let view = &view;
                std::thread::scope(|scope| {
                    let handles: Vec<_> = self
                        .banks
                        .chunks_mut(per)
                        .enumerate()
                        .map(|(t, banks)| {
                            scope.spawn(move || -> Result<Tally> {
                                // The cores the workers leave over split each launch (one each
                                // where there are at least as many workers as cores).
                                parallel::with_threads((parallel::cores() / threads).max(1), || {
                                    let mut mine: Tally = [(0, 0.0); Kernel::ALL.len() + 1];
                                    for (i, bank) in banks.iter_mut().enumerate() {
                                        view.run(t * per + i, bank, launches, profiling.then_some(&mut mine))?;
                                    }
                                    Ok(mine)
                                })
                            })
                        })
                        .collect();
                    handles.into_iter().try_for_each(|h| {
                        let mine =
                            h.join().unwrap_or_else(|_| Err(Error::Internal("a CPU worker thread panicked".into())))?;
                        for (sum, (n, s)) in tally.iter_mut().zip(mine) {
                            sum.0 += n;
                            sum.1 += s;
                        }
                        Ok::<(), Error>(())
                    })
                })?;
            }
        }
        if let Some(started) = started {
            self.profiled = Some((tally, started.elapsed().as_secs_f64()));
        }
        reads
            .iter()
            .map(|(b, r)| match self.check(*b)? {
                None => {
                    let buf = &self.shared[b.0];
                    buf.get(r.clone())
                        .map(|s| s.to_vec())
                        .ok_or_else(|| Error::Internal(format!("read {r:?} past a buffer of {}", buf.len())))
                }
                Some(stride) => {
                    if r.end > stride * self.members || r.start > r.end {
                        return Err(Error::Internal(format!(
                            "read {r:?} past a member buffer of {} x {stride}",
                            self.members
                        )));
                    }
                    let mut out = Vec::with_capacity(r.len());
                    let mut at = r.start;
                    while at < r.end {
                        let (m, i) = (at / stride, at % stride);
                        let n = (r.end - at).min(stride - i);
                        out.extend_from_slice(&self.banks[m][b.0][i..i + n]);
                        at += n;
                    }
                    Ok(out)
                }
            })
            .collect()
    }

    /// `WGFIT_PROFILE=1` profiles every fit on the CPU path too (read once), as it does on a GPU.
    fn profiles_every_fit(&self) -> bool {
        static EVERY_FIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *EVERY_FIT.get_or_init(|| std::env::var("WGFIT_PROFILE").is_ok_and(|v| v == "1"))
    }

    fn set_profiling(&mut self, on: bool) {
        self.profiling = on;
        self.profiled = None;
    }

    fn take_profile(&mut self) -> Option<EpochProfile> {
        let (tally, run_s) = self.profiled.take()?;
        let mut profile = EpochProfile {
            epoch: 0,
            clock: ProfileClock::Host,
            device: "cpu reference".into(),
            wall_ms: 0.0,
            host_ms: 0.0,
            span_ms: run_s * 1e3,
            kernels: Vec::new(),
        };
        let names = Kernel::ALL.iter().map(|k| (k.family().name(), k.entry())).chain([("(copies)", "copy")]);
        profile.add_kernels(names.zip(tally).filter(|(_, (n, _))| *n > 0).map(|((f, k), (n, s))| (f, k, n, s)));
        Some(profile)
    }

    fn buffer_count(&self) -> usize {
        self.strides.len()
    }

    fn allocated_bytes(&self) -> usize {
        let shared: usize = self.shared.iter().map(Vec::len).sum();
        let per_member: usize = self.strides.iter().flatten().sum();
        (shared + per_member * self.members) * 4
    }

    fn max_binding_values(&self) -> usize {
        usize::MAX / 4
    }

    fn max_data_bytes(&self) -> Option<usize> {
        self.max_data_bytes
    }
}

/// Below this many multiply-adds the plain loop beats packing for a blocked GEMM.
const GEMM_MIN_WORK: usize = 8 * 1024;

/// The Matmul launch: `kernels::matmul`'s semantics (strided views, implicit ones via `aug`,
/// activation / activation-derivative epilogue) on a blocked, multithreaded GEMM
/// (`product::product`). Small products and views that would reach past a buffer take the plain loop.
pub(crate) fn matmul(p: &MatmulArgs, a: &[f32], b: &[f32], c: &mut [f32], aux: &[f32]) {
    let small = (p.m as usize) * (p.n as usize) * (p.k as usize) < GEMM_MIN_WORK;
    let done = if small { matmul_small(p, a, b, c, aux) } else { matmul_blocked(p, a, b, c, aux) };
    if !done {
        kernels::matmul(p, a, b, c, aux)
    }
}

thread_local! {
    /// matmul_small's B packed row-major when its view is not, and its accumulator row.
    static SMALL_SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The small products of a sweep's models: the twin's loop order exactly (each output the sum over
/// k in order, from 0), so bit-identical to `kernels::matmul`, but with B's rows contiguous (packed
/// once when B is a transposed view) so the inner loop runs over slices the compiler vectorizes,
/// and no allocation per call. False (nothing written) when a view would reach past its buffer.
fn matmul_small(p: &MatmulArgs, a: &[f32], b: &[f32], c: &mut [f32], aux: &[f32]) -> bool {
    let (n, k) = (p.n as usize, p.k as usize);
    if stored_shape(p, a, b, c, aux).is_none() {
        return false;
    }
    SMALL_SCRATCH.with(|cell| {
        let (packed, row) = &mut *cell.borrow_mut();
        let (rows, b0, brs): (&[f32], usize, usize) = if p.b_cs == 1 {
            (b, p.b_off as usize, p.b_rs as usize)
        } else {
            packed.clear();
            for r in 0..k {
                let at = p.b_off as usize + r * p.b_rs as usize;
                packed.extend((0..n).map(|j| b[at + j * p.b_cs as usize]));
            }
            (packed.as_slice(), 0, n)
        };
        row.clear();
        row.resize(n, 0.0);
        small_rows(p, a, BRows { rows, b0, stride: brs }, row, c, aux);
    });
    true
}

/// B's rows for matmul_small: row r at `rows[b0 + r * stride..]`, contiguous.
#[derive(Clone, Copy)]
struct BRows<'a> {
    rows: &'a [f32],
    b0: usize,
    stride: usize,
}

/// matmul_small's loops over C's rows, compiled for the baseline and for AVX2 (8 lanes; no FMA,
/// so every sum rounds as in the twin).
#[multiversion(targets("x86_64+avx2+avx"))]
fn small_rows<'b>(p: &MatmulArgs, a: &[f32], b: BRows<'b>, row: &mut [f32], c: &mut [f32], aux: &[f32]) {
    let BRows { rows, b0, stride: brs } = b;
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let c_off = p.c_off as usize;
    let (a_off, a_rs, a_cs) = (p.a_off as usize, p.a_rs as usize, p.a_cs as usize);
    // A's stored part: its implicit ones column or row is added as 1 below.
    let k_stored = if p.ones == Ones::LastColumn { k - 1 } else { k };
    for i in 0..m {
        let ones_row = p.ones == Ones::LastRow && i == m - 1;
        let a_at = |r: usize| if ones_row { 1.0 } else { a[a_off + i * a_rs + r * a_cs] };
        if n == 1 {
            // One output column (a Dense(1) layer): a plain sum over k, in the same order.
            let mut acc = 0.0f32;
            for r in 0..k_stored {
                acc += a_at(r) * rows[b0 + r * brs];
            }
            if k_stored < k {
                acc += rows[b0 + (k - 1) * brs];
            }
            row[0] = acc;
        } else {
            row.fill(0.0);
            for r in 0..k {
                let av = if r < k_stored { a_at(r) } else { 1.0 };
                let br = &rows[b0 + r * brs..b0 + r * brs + n];
                for (acc, &bv) in row.iter_mut().zip(br) {
                    *acc += av * bv;
                }
            }
        }
        let out = &mut c[c_off + i * n..c_off + (i + 1) * n];
        out.copy_from_slice(row);
        let aux_row = if p.derivative.code() != 0 { &aux[i * n..(i + 1) * n] } else { &[] };
        kernels::epilogue(p, out, aux_row);
    }
}

/// The product's stored shape (rows of A, and k, without the implicit ones row or column), when
/// every view of the launch lies inside its buffer (and C is not empty); None otherwise.
fn stored_shape(p: &MatmulArgs, a: &[f32], b: &[f32], c: &[f32], aux: &[f32]) -> Option<(usize, usize)> {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let (mm, kk) = match p.ones {
        Ones::LastColumn => (m, k.saturating_sub(1)),
        Ones::LastRow => (m.saturating_sub(1), k),
        Ones::None => (m, k),
    };
    let ok = m > 0
        && n > 0
        && c.len() >= p.c_off as usize + m * n
        && View::of_a(p).end(mm, kk) <= a.len()
        && View::of_b(p).end(k, n) <= b.len()
        && (p.derivative.code() == 0 || aux.len() >= m * n);
    ok.then_some((mm, kk))
}

/// The blocked path of [`matmul`]; false (nothing written) when a view would reach past its buffer.
fn matmul_blocked(p: &MatmulArgs, a: &[f32], b: &[f32], c: &mut [f32], aux: &[f32]) -> bool {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    let Some((mm, kk)) = stored_shape(p, a, b, c, aux) else { return false };
    let c_off = p.c_off as usize;
    let out = &mut c[c_off..c_off + m * n];
    let (av, bv) = (View::of_a(p), View::of_b(p));
    if !product::product(product::Engine::choose(mm, kk, n, bv), mm, kk, n, a, av, b, bv, out) {
        return false;
    }
    if p.ones == Ones::LastRow {
        // The implicit ones row of A: the last output row is B's column sums.
        let last = &mut out[(m - 1) * n..m * n];
        last.fill(0.0);
        for r in 0..k {
            let at = bv.off + r * bv.rs;
            if bv.cs == 1 {
                last.iter_mut().zip(&b[at..at + n]).for_each(|(v, x)| *v += x);
            } else {
                last.iter_mut().enumerate().for_each(|(j, v)| *v += b[at + j * bv.cs]);
            }
        }
    }
    // The implicit ones column of A picks B's last row: the bias, added to every row after the
    // product (as the twin's sum ends with it), in the same pass as the epilogue.
    let bias = (p.ones == Ones::LastColumn).then(|| View { off: bv.off + (k - 1) * bv.rs, ..bv });
    fused_epilogue(p, out, aux, b, bias);
    true
}

/// The blocked product's output pass, row by row while the row is in L1: the bias (B's row at
/// `bias`, when there is one), the activation, then the derivative factor from `aux`; the same
/// operations in the same order as the twin's `kernels::epilogue` after its sum.
#[multiversion(targets("x86_64+avx2+avx"))]
fn fused_epilogue(p: &MatmulArgs, out: &mut [f32], aux: &[f32], b: &[f32], bias: Option<View>) {
    let n = p.n as usize;
    let derivative = p.derivative.code() != 0;
    if bias.is_none() && p.activation.code() == 0 && !derivative {
        return;
    }
    for (i, row) in out.chunks_exact_mut(n).enumerate() {
        match bias {
            Some(v) if v.cs == 1 => row.iter_mut().zip(&b[v.off..v.off + n]).for_each(|(x, y)| *x += y),
            Some(v) => row.iter_mut().enumerate().for_each(|(j, x)| *x += b[v.off + j * v.cs]),
            None => {}
        }
        kernels::epilogue(p, row, if derivative { &aux[i * n..(i + 1) * n] } else { &[] });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Activation;
    use rand::{Rng, SeedableRng};

    /// The small-product path is the twin bit for bit (it keeps the twin's order of sums), over
    /// the three layouts of a Dense layer, every ones / activation / derivative mode, odd sizes.
    #[test]
    fn small_matmul_is_the_twin_bit_for_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let mut cases = 0;
        for &(m, n, k) in &[(1usize, 1usize, 2usize), (3, 5, 7), (32, 16, 17), (7, 1, 33), (17, 3, 9)] {
            for layout in 0..3 {
                for ones in Ones::ALL {
                    for (act, dact) in [(0usize, 0usize), (1, 0), (2, 0), (0, 1), (0, 2)] {
                        let (a_rs, a_cs, b_rs, b_cs) = match layout {
                            0 => (k as u32, 1, n as u32, 1),
                            1 => (k as u32, 1, 1, k as u32),
                            _ => (1, m as u32, n as u32, 1),
                        };
                        let p = MatmulArgs {
                            m: m as u32,
                            n: n as u32,
                            k: k as u32,
                            a_off: 2,
                            a_rs,
                            a_cs,
                            b_off: 1,
                            b_rs,
                            b_cs,
                            c_off: 3,
                            ones,
                            activation: Activation::ALL[act],
                            derivative: Activation::ALL[dact],
                        };
                        let a: Vec<f32> = (0..2 + m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                        let b: Vec<f32> = (0..1 + k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                        let aux: Vec<f32> = (0..m * n).map(|_| rng.random_range(-0.5..1.0)).collect();
                        let mut want = vec![f32::NAN; 3 + m * n];
                        let mut got = want.clone();
                        kernels::matmul(&p, &a, &b, &mut want, &aux);
                        assert!(matmul_small(&p, &a, &b, &mut got, &aux), "{p:?}");
                        let same = got[3..].iter().zip(&want[3..]).all(|(g, w)| g.to_bits() == w.to_bits());
                        assert!(same, "{p:?}: {got:?} vs {want:?}");
                        assert!(got[..3].iter().all(|v| v.is_nan()), "{p:?}: wrote before c_off");
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 5 * 3 * 3 * 5);
    }

    /// The blocked GEMM against the plain reference loop, over odd shapes, every aug / act / dact
    /// mode, and the three stride layouts a Dense layer uses (forward, dX = dZ·Wᵀ, dW = Xᵀ·dZ).
    #[test]
    fn blocked_matmul_matches_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let sizes = [1usize, 7, 33, 513];
        let mut cases = 0;
        for &m in &sizes {
            for &n in &sizes {
                for &k in &sizes {
                    for aug in 0..3u32 {
                        if (aug == 1 && k < 2) || (aug == 2 && m < 2) {
                            continue;
                        }
                        for layout in 0..3 {
                            for (act, dact) in [(0u32, 0u32), (1, 0), (2, 0), (0, 1), (0, 2), (1, 1)] {
                                // Keep the big cubes to a few modes: they cost the most time.
                                if m * n * k > 33 * 33 * 513 && (act, dact) != (1, 1) && aug != 0 {
                                    continue;
                                }
                                let (a_off, b_off, c_off) =
                                    (rng.random_range(0..5u32), rng.random_range(0..5u32), 3u32);
                                let (a_rs, a_cs, b_rs, b_cs) = match layout {
                                    0 => (k as u32, 1, n as u32, 1), // row-major A and B
                                    1 => (k as u32, 1, 1, k as u32), // B transposed (W viewed as Wᵀ)
                                    _ => (1, m as u32, n as u32, 1), // A transposed (Xᵀ)
                                };
                                let code =
                                    |c: u32| [Activation::Linear, Activation::Relu, Activation::Sigmoid][c as usize];
                                let p = MatmulArgs {
                                    m: m as u32,
                                    n: n as u32,
                                    k: k as u32,
                                    a_off,
                                    a_rs,
                                    a_cs,
                                    b_off,
                                    b_rs,
                                    b_cs,
                                    c_off,
                                    ones: [Ones::None, Ones::LastColumn, Ones::LastRow][aug as usize],
                                    activation: code(act),
                                    derivative: code(dact),
                                };
                                let a: Vec<f32> =
                                    (0..a_off as usize + m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                                let b: Vec<f32> =
                                    (0..b_off as usize + k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                                let aux: Vec<f32> = (0..m * n).map(|_| rng.random_range(-0.5..1.0)).collect();
                                let mut want = vec![9.0f32; c_off as usize + m * n + 2];
                                let mut got = want.clone();
                                kernels::matmul(&p, &a, &b, &mut want, &aux);
                                assert!(matmul_blocked(&p, &a, &b, &mut got, &aux), "{p:?}");
                                let scale = (k as f32).sqrt().max(1.0);
                                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                                    let err = (g - w).abs() / (w.abs() + scale);
                                    assert!(err <= 1e-4, "{p:?} at {i}: got {g}, want {w}");
                                }
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(cases > 1000);
    }
}
