//! [`GpuBackend`]: one model's buffers and bound kernels on a [`GpuContext`], and the recorder
//! that turns a list of launches into steps (Matmul variants chosen, operand packs inserted), the
//! steps into one submission, and the submission's results into one readback.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use super::context::{GpuContext, Pipeline};
use super::matmul::texture::{OperandKey, OperandTexture};
use super::matmul::DenseModule;
use super::timestamps::{self, Mark, QuerySets, TimestampMode};
use crate::device::args::{Args, Uniform};
use crate::device::kernels::{Access, Family, Kernel};
use crate::device::{check_bindings, member_stride, Backend, BufId, Launch, OpId};
use crate::error::{Error, Result};
use crate::profile::{EpochProfile, ProfileClock};

/// Bytes between two launch records in the params buffer (the dynamic-offset alignment WebGPU
/// guarantees to be enough).
const RECORD_STRIDE: u64 = 256;

pub(crate) struct GpuBuffer {
    pub(crate) buffer: wgpu::Buffer,
    /// Values in all (every member's block of a member buffer).
    len: usize,
    /// A member buffer's values per member; None for a shared buffer.
    stride: Option<usize>,
}

/// A kernel bound to its buffers.
pub(crate) struct BoundOp {
    kernel: Kernel,
    pipeline: Arc<Pipeline>,
    group: wgpu::BindGroup,
    pub(crate) buffers: Vec<BufId>,
}

/// One dispatch or copy of a recording, after Matmul variants are chosen and packs inserted.
pub(crate) enum Step {
    Dispatch {
        pipeline: wgpu::ComputePipeline,
        group: wgpu::BindGroup,
        params: Uniform,
        groups: [u32; 3],
        /// The kernel entry point (or Matmul variant) and its family, for the profiler.
        name: &'static str,
        family: Family,
    },
    Copy {
        src: BufId,
        src_off: usize,
        dst: BufId,
        dst_off: usize,
        len: usize,
    },
    /// Refreshes an operand texture's stored values by a plain copy (its ones and zeros stay).
    Refresh {
        key: OperandKey,
    },
}

/// One plan's buffers and bound kernels on a [`GpuContext`].
pub(crate) struct GpuBackend {
    pub(crate) ctx: Arc<GpuContext>,
    /// Models in the plan: every dispatch runs this many workgroup layers in z.
    pub(crate) members: usize,
    pub(crate) buffers: Vec<GpuBuffer>,
    pub(crate) ops: Vec<BoundOp>,
    /// Operand textures of texture-form Matmul launches, made on first use and kept.
    pub(crate) operands: HashMap<OperandKey, OperandTexture>,
    /// Bind groups of texture-form Matmul launches: (op, A texture, B texture).
    pub(crate) texture_groups: HashMap<(usize, OperandKey, OperandKey), wgpu::BindGroup>,
    steps: Vec<Step>,
    /// Launch records, one per RECORD_STRIDE, and the bind group that exposes one at a time.
    params: Option<(wgpu::Buffer, wgpu::BindGroup, u64)>,
    staging: Option<(wgpu::Buffer, u64)>,
    record_bytes: Vec<u8>,
    /// Matmul launches use the scalar reference kernel only (`GpuOptions::scalar_matmul`, and tests).
    pub(crate) scalar_matmul: bool,
    /// Matmul launches never use the subgroup variant (tests, to cover the plain one too).
    pub(crate) no_subgroup: bool,
    /// Matmul launches never use the texture-operand variants (tests, to cover the others).
    pub(crate) no_texture: bool,
    /// Every Matmul launch (not scalar) runs this workgroup-tiled variant (tests, on lavapipe).
    pub(crate) force_tiled: Option<super::matmul::MatmulVariant>,
    /// Tiled launches stage aligned operands by vec4 loads (the device's setting).
    pub(crate) tiled_vec4: bool,
    /// Tiled launches proven in bounds run the unchecked module (the device's setting; tests turn
    /// it on to prove that module correct on lavapipe).
    pub(crate) unchecked_products: bool,
    /// Profile each run (`Backend::set_profiling`: a fit's epochs).
    profiling: bool,
    /// How this backend's profiled runs place timestamps: the device's mode (tests force
    /// `PassPerDispatch` on adapters that have both); None: each dispatch timed alone.
    pub(crate) timestamp_mode: Option<TimestampMode>,
    /// The profiler's query sets and resolve buffer (made on the first profiled run).
    pub(crate) queries: QuerySets,
    /// The run in flight's timed dispatches, between `prepare` and `collect`.
    stamps: Option<Stamps>,
    /// The last profiled run's profile, until taken.
    profiled: Option<EpochProfile>,
    /// Submissions made by `Backend::submit` and not yet waited for, oldest first.
    in_flight: std::collections::VecDeque<wgpu::SubmissionIndex>,
    /// A profiled run's pieces before its last (`Backend::submit`: streamed data), merged.
    pieces: Option<EpochProfile>,
}

/// A profiled run's timestamps in flight: the dispatches they time, how many queries, where in
/// the readback buffer they land, and the host's recording time.
struct Stamps {
    marks: Vec<Mark>,
    queries: u32,
    at: u64,
    host_s: f64,
}

impl GpuBackend {
    pub(crate) fn new(ctx: Arc<GpuContext>, members: usize) -> Self {
        GpuBackend {
            timestamp_mode: ctx.timestamps,
            scalar_matmul: ctx.scalar_matmul,
            tiled_vec4: ctx.tiled_vec4,
            unchecked_products: ctx.unchecked_products,
            ctx,
            members: members.max(1),
            buffers: Vec::new(),
            ops: Vec::new(),
            operands: HashMap::new(),
            texture_groups: HashMap::new(),
            steps: Vec::new(),
            params: None,
            staging: None,
            record_bytes: Vec::new(),
            no_subgroup: false,
            no_texture: false,
            force_tiled: None,
            profiling: false,
            queries: QuerySets::default(),
            stamps: None,
            profiled: None,
            in_flight: std::collections::VecDeque::new(),
            pieces: None,
        }
    }

    fn buffer(&self, id: BufId) -> Result<&GpuBuffer> {
        self.buffers.get(id.0).ok_or_else(|| Error::Internal(format!("no buffer {id:?}")))
    }

    /// The params buffer, grown to hold `records` launch records.
    fn params_for(&mut self, records: u64) -> Result<()> {
        let needed = records.max(1) * RECORD_STRIDE;
        if self.params.as_ref().is_some_and(|(_, _, cap)| *cap >= needed) {
            return Ok(());
        }
        let capacity = needed.next_power_of_two().max(64 * RECORD_STRIDE);
        let ctx = self.ctx.clone();
        let made = ctx.scoped("allocating launch records", || {
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("launch records"),
                size: capacity,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("launch records"),
                layout: &ctx.params_layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(std::mem::size_of::<Uniform>() as u64),
                    }),
                }],
            });
            (buffer, group)
        })?;
        self.params = Some((made.0, made.1, capacity));
        Ok(())
    }

    fn staging_for(&mut self, bytes: u64) -> Result<()> {
        if self.staging.as_ref().is_some_and(|(_, cap)| *cap >= bytes) {
            return Ok(());
        }
        let capacity = bytes.next_power_of_two().max(256);
        let ctx = self.ctx.clone();
        let buffer = ctx.scoped("allocating the readback buffer", || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: capacity,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        self.staging = Some((buffer, capacity));
        Ok(())
    }
}

impl GpuBackend {
    /// The launch record of `args` on bound op `op`: the arguments' fields and the member strides
    /// of the op's buffers.
    pub(crate) fn launch_record(&self, op: usize, args: &Args) -> Uniform {
        let mut params = args.uniform();
        for (&(binding, _), buf) in args.kernel().bindings().iter().zip(&self.ops[op].buffers) {
            let stride = self.buffers[buf.0].stride.unwrap_or(0);
            params.set_member_stride(binding, stride as u32);
        }
        params
    }

    /// Turns launches into steps: each Matmul's variant chosen, and before a texture-form one the
    /// packs of its operands that are not already current. A pack stays current until a launch or
    /// copy writes its buffer; every recording starts with none current (the host may have
    /// written any buffer in between).
    fn plan_steps(&mut self, launches: &[Launch], steps: &mut Vec<Step>) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut current: HashSet<OperandKey> = HashSet::new();
        for l in launches {
            match *l {
                Launch::Run { op, args } => {
                    let bound = self.ops.get(op.0).ok_or_else(|| Error::Internal(format!("no op {op:?}")))?;
                    let kernel = bound.kernel;
                    if args.kernel() != kernel {
                        return Err(Error::Internal(format!(
                            "{} launched with {:?}'s arguments",
                            kernel.entry(),
                            args.kernel()
                        )));
                    }
                    let params = self.launch_record(op.0, &args);
                    let z = self.members as u32;
                    if let Args::Matmul(matmul) = args {
                        let key = self.matmul_pipeline_for(&matmul, op.0, &params);
                        let v = key.variant;
                        let pipeline = ctx.matmul_pipeline(&self.ops[op.0].pipeline, key)?;
                        let group = if v.module() == DenseModule::Texture {
                            let (a, b) = (self.ops[op.0].buffers[0], self.ops[op.0].buffers[1]);
                            let (ka, kb) = OperandKey::pair(&matmul, a, b);
                            for key in [ka, kb] {
                                if current.insert(key) {
                                    steps.push(self.pack_step(key)?);
                                }
                            }
                            self.texture_group(op.0, ka, kb)?
                        } else {
                            self.ops[op.0].group.clone()
                        };
                        let [x, y, _] = v.workgroups(&matmul);
                        steps.push(Step::Dispatch {
                            pipeline,
                            group,
                            params,
                            groups: [x, y, z],
                            name: v.entry(),
                            family: Family::Dense,
                        });
                    } else {
                        let bound = &self.ops[op.0];
                        let [x, y, _] = args.grid().workgroups();
                        steps.push(Step::Dispatch {
                            pipeline: bound.pipeline.pipeline.clone(),
                            group: bound.group.clone(),
                            params,
                            groups: [x, y, z],
                            name: kernel.entry(),
                            family: kernel.family(),
                        });
                    }
                    for (&(_, access), buf) in kernel.bindings().iter().zip(&self.ops[op.0].buffers) {
                        if access == Access::ReadWrite {
                            current.retain(|k| k.buf != buf.0);
                        }
                    }
                }
                Launch::Copy { src, src_off, dst, dst_off, len, member } => {
                    current.retain(|k| k.buf != dst.0);
                    let (ss, ds) = (self.buffer(src)?.stride, self.buffer(dst)?.stride);
                    let (Some(ss), Some(ds)) = (ss, ds) else {
                        return Err(Error::Internal("a copy runs between two member buffers".into()));
                    };
                    if src_off + len > ss || dst_off + len > ds {
                        return Err(Error::Internal(format!("copy of {len} values past a member block")));
                    }
                    match member {
                        Some(m) if m < self.members => steps.push(Step::Copy {
                            src,
                            src_off: m * ss + src_off,
                            dst,
                            dst_off: m * ds + dst_off,
                            len,
                        }),
                        Some(m) => return Err(Error::Internal(format!("copy for member {m} of {}", self.members))),
                        // Whole blocks of equal strides: one copy for all members.
                        None if ss == ds && src_off == 0 && dst_off == 0 && len == ss => {
                            steps.push(Step::Copy { src, src_off: 0, dst, dst_off: 0, len: len * self.members })
                        }
                        None => {
                            for m in 0..self.members {
                                steps.push(Step::Copy {
                                    src,
                                    src_off: m * ss + src_off,
                                    dst,
                                    dst_off: m * ds + dst_off,
                                    len,
                                });
                            }
                        }
                    }
                }
                Launch::Fill { .. } => return Err(Error::Internal("a chunk fill reached the GPU backend".into())),
            }
        }
        Ok(())
    }

    /// Records the steps into one submission: launch records uploaded in one write, a compute pass
    /// per run of dispatches, copies between passes, then the copies of `reads` to the staging buffer.
    fn record(&mut self, steps: &[Step], reads: &[(BufId, Range<usize>)]) -> Result<wgpu::SubmissionIndex> {
        let (commands, _) = self.encode(steps, reads, None)?;
        Ok(self.ctx.submit([commands]))
    }

    /// Records the steps and the copies of `reads` into one command buffer, not yet submitted
    /// (the launch records are written to the queue first). With `stamp` (the profiler's
    /// timestamp mode, the queries the steps need, and where they go in the staging buffer),
    /// timestamps are written around every dispatch, resolved and copied after the reads; the
    /// marks returned say which queries time which dispatch.
    fn encode(
        &mut self,
        steps: &[Step],
        reads: &[(BufId, Range<usize>)],
        stamp: Option<(TimestampMode, u32, u64)>,
    ) -> Result<(wgpu::CommandBuffer, Vec<Mark>)> {
        let records = steps.iter().filter(|s| matches!(s, Step::Dispatch { .. })).count();
        self.params_for(records as u64)?;
        self.record_bytes.clear();
        self.record_bytes.resize(records * RECORD_STRIDE as usize, 0);
        let mut i = 0;
        for step in steps {
            if let Step::Dispatch { params, .. } = step {
                let at = i * RECORD_STRIDE as usize;
                self.record_bytes[at..at + std::mem::size_of::<Uniform>()].copy_from_slice(bytemuck::bytes_of(params));
                i += 1;
            }
        }
        let ctx = self.ctx.clone();
        if let Some((_, queries, _)) = stamp {
            let sets = &mut self.queries;
            ctx.scoped("allocating the profiler's timestamp queries", || sets.ensure(&ctx.device, queries))?;
        }
        let (params_buf, params_group, _) = self.params.as_ref().expect("made above");
        let dispatch = |pass: &mut wgpu::ComputePass<'_>, step: &Step, record: u64| {
            let Step::Dispatch { pipeline, group, groups: [x, y, z], .. } = step else {
                unreachable!("counted dispatches")
            };
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.set_bind_group(1, params_group, &[(record * RECORD_STRIDE) as u32]);
            pass.dispatch_workgroups(*x, *y, *z);
        };
        let mark = |step: &Step, begin: u32, end: u32| match step {
            Step::Dispatch { name, family, .. } => Mark { family: *family, kernel: name, begin, end },
            _ => unreachable!("counted dispatches"),
        };
        ctx.scoped("recording the launches", || -> Result<(wgpu::CommandBuffer, Vec<Mark>)> {
            if !self.record_bytes.is_empty() {
                ctx.queue.write_buffer(params_buf, 0, &self.record_bytes);
            }
            let mut encoder =
                ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("epoch") });
            let sets = &self.queries.sets;
            let mut marks = Vec::with_capacity(if stamp.is_some() { records } else { 0 });
            // The next global query (`timestamps::slot` says which set and index).
            let mut next = 0u32;
            let mut record = 0u64;
            let mut pending = steps;
            while !pending.is_empty() {
                let runs = pending.iter().take_while(|s| matches!(s, Step::Dispatch { .. })).count();
                if runs > 0 {
                    if let Some((TimestampMode::PassPerDispatch, ..)) = stamp {
                        for step in &pending[..runs] {
                            let (set, at) = timestamps::slot(next);
                            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: None,
                                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                    query_set: &sets[set],
                                    beginning_of_pass_write_index: Some(at),
                                    end_of_pass_write_index: Some(at + 1),
                                }),
                            });
                            dispatch(&mut pass, step, record);
                            marks.push(mark(step, next, next + 1));
                            next += 2;
                            record += 1;
                        }
                    } else {
                        let inside = stamp.is_some();
                        let mut pass = encoder
                            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                        let mut write = |pass: &mut wgpu::ComputePass<'_>| {
                            let (set, at) = timestamps::slot(next);
                            pass.write_timestamp(&sets[set], at);
                            next += 1;
                        };
                        if inside {
                            write(&mut pass);
                        }
                        for step in &pending[..runs] {
                            dispatch(&mut pass, step, record);
                            record += 1;
                            if inside {
                                write(&mut pass);
                            }
                        }
                        drop(pass);
                        if inside {
                            let first = next - runs as u32 - 1;
                            marks.extend((0..runs).map(|i| mark(&pending[i], first + i as u32, first + i as u32 + 1)));
                        }
                    }
                    pending = &pending[runs..];
                } else {
                    match pending[0] {
                        Step::Copy { src, src_off, dst, dst_off, len } => encoder.copy_buffer_to_buffer(
                            &self.buffers[src.0].buffer,
                            (src_off * 4) as u64,
                            &self.buffers[dst.0].buffer,
                            (dst_off * 4) as u64,
                            (len * 4) as u64,
                        ),
                        Step::Refresh { key } => self.encode_refresh(&mut encoder, key),
                        Step::Dispatch { .. } => unreachable!("not a dispatch"),
                    }
                    pending = &pending[1..];
                }
            }
            let mut at = 0u64;
            if let Some((staging, _)) = &self.staging {
                for (b, r) in reads {
                    let bytes = (r.len() * 4) as u64;
                    if bytes > 0 {
                        encoder.copy_buffer_to_buffer(
                            &self.buffers[b.0].buffer,
                            (r.start * 4) as u64,
                            staging,
                            at,
                            bytes,
                        );
                    }
                    at += bytes;
                }
                if let (Some((_, queries, stamps_at)), Some((resolve, _))) = (stamp, &self.queries.resolve) {
                    if next != queries {
                        return Err(Error::Internal(format!("{next} timestamps written, {queries} counted")));
                    }
                    if queries > 0 {
                        self.queries.resolve(&mut encoder, queries);
                        let bytes = u64::from(queries) * u64::from(wgpu::QUERY_SIZE);
                        encoder.copy_buffer_to_buffer(resolve, 0, staging, stamps_at, bytes);
                    }
                }
            }
            Ok((encoder.finish(), marks))
        })?
    }
}

impl GpuBackend {
    fn make_buffer(&mut self, len: usize, stride: Option<usize>, label: &str) -> Result<BufId> {
        // Whole vec4s: the matmul kernels read their operands as arrays of vec4.
        let bytes = (len.max(1) as u64).saturating_mul(4).div_ceil(16).saturating_mul(16);
        let limits = self.ctx.limits();
        if bytes > limits.max_buffer_size || bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::Gpu(format!(
                "{label} needs {bytes} bytes, more than this adapter allows in one buffer \
                 (max_buffer_size {}, max_storage_buffer_binding_size {}); use a smaller batch or fewer rows",
                limits.max_buffer_size, limits.max_storage_buffer_binding_size
            )));
        }
        let ctx = self.ctx.clone();
        let buffer = ctx.scoped(&format!("allocating {label} ({bytes} bytes)"), || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })?;
        self.buffers.push(GpuBuffer { buffer, len: len.max(1), stride });
        Ok(BufId(self.buffers.len() - 1))
    }
}

impl GpuBackend {
    /// The first half of a run: checks the reads, plans the steps and encodes them with the
    /// readback copies into a command buffer for the caller to submit (alone, or with other
    /// backends' in one submission: `device::run_together`). A profiled run writes timestamps
    /// into the same command buffer, or, on a device without them, runs each step alone first.
    pub(crate) fn prepare(
        &mut self,
        launches: &[Launch],
        reads: &[(BufId, Range<usize>)],
    ) -> Result<wgpu::CommandBuffer> {
        let started = self.profiling.then(Instant::now);
        self.stamps = None;
        self.ctx.check_fault()?;
        for (b, r) in reads {
            let buf = self.buffer(*b)?;
            if r.end > buf.len || r.start > r.end {
                return Err(Error::Internal(format!("read {r:?} past a buffer of {}", buf.len)));
            }
        }
        let mut steps = std::mem::take(&mut self.steps);
        steps.clear();
        let planned = self.plan_steps(launches, &mut steps);
        let mode = self.timestamp_mode.filter(|_| self.profiling);
        if let (Some(started), None, Ok(())) = (started, mode, &planned) {
            self.time_alone(std::mem::take(&mut steps), started.elapsed().as_secs_f64())?;
        }
        let queries = mode.map_or(0, |m| m.queries(steps.iter().map(|s| matches!(s, Step::Dispatch { .. }))));
        let read_bytes: u64 = reads.iter().map(|(_, r)| (r.len() * 4) as u64).sum();
        let stamps_at = read_bytes.next_multiple_of(u64::from(wgpu::QUERY_SIZE));
        let staged =
            if queries > 0 { stamps_at + u64::from(queries) * u64::from(wgpu::QUERY_SIZE) } else { read_bytes };
        if staged > 0 {
            self.staging_for(staged)?;
        }
        let stamp = mode.filter(|_| queries > 0).map(|m| (m, queries, stamps_at));
        let encoded = planned.and_then(|()| self.encode(&steps, reads, stamp));
        self.steps = steps;
        let (commands, marks) = encoded?;
        if let (Some(started), Some(_)) = (started, stamp) {
            self.stamps = Some(Stamps { marks, queries, at: stamps_at, host_s: started.elapsed().as_secs_f64() });
        }
        Ok(commands)
    }

    /// The profiler without timestamp queries: each step submitted, waited for and timed alone
    /// (the old `WGFIT_PROFILE`), into the run's profile. `host_s`: planning the steps.
    fn time_alone(&mut self, steps: Vec<Step>, host_s: f64) -> Result<()> {
        self.ctx.note_no_timestamps();
        let mut profile = self.empty_profile(ProfileClock::DispatchesAlone, host_s);
        let mut rows = Vec::with_capacity(steps.len());
        for step in steps {
            let (family, kernel) = match &step {
                Step::Dispatch { name, family, .. } => (family.name(), *name),
                Step::Copy { .. } => ("(copies)", "copy"),
                Step::Refresh { .. } => ("(copies)", "texture refresh"),
            };
            let started = Instant::now();
            let submission = self.record(std::slice::from_ref(&step), &[])?;
            self.ctx.wait(submission)?;
            rows.push((family, kernel, 1, started.elapsed().as_secs_f64()));
        }
        profile.add_kernels(rows);
        profile.span_ms = profile.kernel_ms();
        self.profiled = Some(profile);
        Ok(())
    }

    fn empty_profile(&self, clock: ProfileClock, host_s: f64) -> EpochProfile {
        EpochProfile {
            epoch: 0,
            clock,
            device: self.ctx.info().adapter,
            wall_ms: 0.0,
            host_ms: host_s * 1e3,
            span_ms: 0.0,
            kernels: Vec::new(),
        }
    }

    /// The second half: waits for `submission` and reads back what `prepare` copied (and a
    /// profiled run's timestamps, into its profile).
    pub(crate) fn collect(
        &mut self,
        submission: wgpu::SubmissionIndex,
        reads: &[(BufId, Range<usize>)],
    ) -> Result<Vec<Vec<f32>>> {
        let read_bytes: u64 = reads.iter().map(|(_, r)| (r.len() * 4) as u64).sum();
        let stamps = self.stamps.take();
        let staged = stamps.as_ref().map_or(read_bytes, |s| s.at + u64::from(s.queries) * u64::from(wgpu::QUERY_SIZE));
        let ctx = self.ctx.clone();
        if staged == 0 {
            ctx.wait(submission)?;
            return Ok(reads.iter().map(|_| Vec::new()).collect());
        }
        let (staging, _) = self.staging.as_ref().expect("made above");
        let slice = staging.slice(0..staged);
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            sender.send(r).ok();
        });
        let answered = ctx.wait(submission).and_then(|()| match pollster::block_on(receiver.receive()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::Gpu(format!("reading results back: {e}"))),
            None => Err(Error::Gpu("reading results back: the GPU never answered".into())),
        });
        if let Err(e) = answered {
            // A wait that timed out leaves the readback buffer mapped (or its map pending): drop it,
            // so that the next run makes a fresh one instead of failing on a mapped buffer.
            self.staging = None;
            return Err(e);
        }
        let mut ticks = Vec::new();
        let out = {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("reading results back: {e:?}")))?;
            let values: &[f32] = bytemuck::cast_slice(&view[..read_bytes as usize]);
            if let Some(s) = &stamps {
                ticks.extend(view[s.at as usize..].chunks_exact(8).map(bytemuck::pod_read_unaligned::<u64>));
            }
            let mut at = 0;
            reads
                .iter()
                .map(|(_, r)| {
                    let v = values[at..at + r.len()].to_vec();
                    at += r.len();
                    v
                })
                .collect()
        };
        staging.unmap();
        if let Some(s) = stamps {
            let mut profile = self.empty_profile(ProfileClock::Timestamps, s.host_s);
            timestamps::decode(&s.marks, &ticks, self.ctx.timestamp_period, &mut profile);
            self.profiled = Some(profile);
        }
        Ok(out)
    }
}

impl Backend for GpuBackend {
    fn members(&self) -> usize {
        self.members
    }

    fn create_buffer(&mut self, len: usize, label: &str) -> Result<BufId> {
        self.make_buffer(len, None, label)
    }

    fn create_member_buffer(&mut self, len: usize, label: &str) -> Result<BufId> {
        let stride = member_stride(len);
        self.make_buffer(stride.saturating_mul(self.members), Some(stride), label)
    }

    fn write(&mut self, buf: BufId, offset: usize, data: &[f32]) -> Result<()> {
        let b = self.buffer(buf)?;
        if offset + data.len() > b.len {
            return Err(Error::Internal(format!(
                "write of {} values at {offset} past a buffer of {}",
                data.len(),
                b.len
            )));
        }
        if !data.is_empty() {
            self.ctx.queue.write_buffer(&b.buffer, (offset * 4) as u64, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    fn bind(&mut self, kernel: Kernel, buffers: &[BufId]) -> Result<OpId> {
        check_bindings(kernel, buffers)?;
        for (b, (_, access)) in buffers.iter().zip(kernel.bindings()) {
            if self.buffer(*b)?.stride.is_none() && *access == Access::ReadWrite && self.members > 1 {
                return Err(Error::Internal(format!("{} writes a shared buffer {b:?}", kernel.entry())));
            }
        }
        let pipeline = self.ctx.pipeline(kernel)?;
        let mut entries = Vec::with_capacity(buffers.len());
        for (&(binding, _), id) in kernel.bindings().iter().zip(buffers) {
            entries.push(wgpu::BindGroupEntry { binding, resource: self.buffer(*id)?.buffer.as_entire_binding() });
        }
        let ctx = self.ctx.clone();
        let group = ctx.scoped(&format!("binding kernel {}", kernel.entry()), || {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.entry()),
                layout: &pipeline.layout,
                entries: &entries,
            })
        })?;
        self.ops.push(BoundOp { kernel, pipeline, group, buffers: buffers.to_vec() });
        Ok(OpId(self.ops.len() - 1))
    }

    fn run(&mut self, launches: &[Launch], reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        let commands = self.prepare(launches, reads)?;
        let submission = self.ctx.submit([commands]);
        // The queue runs in order: this wait covers everything submitted before.
        self.in_flight.clear();
        self.collect(submission, reads)
    }

    fn submit(&mut self, launches: &[Launch]) -> Result<()> {
        if self.profiling {
            // Each piece's timestamps are read back with it, and its profile kept for the run's.
            self.run(launches, &[])?;
            if let Some(p) = self.profiled.take() {
                match self.pieces.as_mut() {
                    Some(all) => all.absorb(p),
                    None => self.pieces = Some(p),
                }
            }
            return Ok(());
        }
        let commands = self.prepare(launches, &[])?;
        self.in_flight.push_back(self.ctx.submit([commands]));
        // One running and one queued: the device stays busy while the host gathers the next
        // chunk, and no more staged chunks than that are held at once.
        while self.in_flight.len() > 2 {
            if let Some(oldest) = self.in_flight.pop_front() {
                self.ctx.wait(oldest)?;
            }
        }
        Ok(())
    }

    fn max_data_bytes(&self) -> Option<usize> {
        self.ctx.max_data_bytes.map(|b| usize::try_from(b).unwrap_or(usize::MAX))
    }

    fn gpu(&mut self) -> Option<&mut GpuBackend> {
        Some(self)
    }

    fn set_profiling(&mut self, on: bool) {
        self.profiling = on;
        self.profiled = None;
        self.pieces = None;
    }

    fn profiles_every_fit(&self) -> bool {
        self.ctx.profile
    }

    fn take_profile(&mut self) -> Option<EpochProfile> {
        let last = self.profiled.take();
        match (self.pieces.take(), last) {
            (Some(mut all), Some(p)) => {
                all.absorb(p);
                Some(all)
            }
            (all, last) => all.or(last),
        }
    }

    fn buffer_count(&self) -> usize {
        self.buffers.len()
    }

    fn allocated_bytes(&self) -> usize {
        self.buffers.iter().map(|b| b.buffer.size() as usize).sum()
    }

    fn max_binding_values(&self) -> usize {
        self.ctx.limits().max_storage_buffer_binding_size.min(self.ctx.limits().max_buffer_size) as usize / 4
    }
}
