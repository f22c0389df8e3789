//! The CPU reference backend: buffers are vectors, launches call the twins in `kernels`.

pub(crate) mod kernels;

use std::ops::Range;

use super::kernels::{Access, Kernel};
use super::{check_bindings, Backend, BufId, Launch, OpId};
use crate::error::{Error, Result};

#[derive(Default)]
pub(crate) struct CpuBackend {
    buffers: Vec<Vec<f32>>,
    ops: Vec<(Kernel, Vec<BufId>)>,
}

impl CpuBackend {
    fn buffer(&self, id: BufId) -> Result<&Vec<f32>> {
        self.buffers.get(id.0).ok_or_else(|| Error::State(format!("internal: no buffer {id:?}")))
    }

    fn launch(&mut self, op: OpId, p: &super::Params) -> Result<()> {
        let (kernel, bufs) = self.ops[op.0].clone();
        let spec = kernel.bindings();
        // Writable buffers are moved out for the call, so reads can borrow the rest.
        let mut taken: Vec<Vec<f32>> = Vec::new();
        for (i, (_, access)) in spec.iter().enumerate() {
            if *access == Access::ReadWrite {
                taken.push(std::mem::take(&mut self.buffers[bufs[i].0]));
            }
        }
        {
            let reads: Vec<&[f32]> = spec
                .iter()
                .enumerate()
                .filter(|(_, (_, a))| *a == Access::Read)
                .map(|(i, _)| self.buffers[bufs[i].0].as_slice())
                .collect();
            let w = &mut taken;
            use kernels as k;
            match kernel {
                Kernel::Gather => {
                    let (xb, yb) = w.split_at_mut(1);
                    k::gather(p, reads[0], reads[1], reads[2], &mut xb[0], &mut yb[0])
                }
                Kernel::Matmul => k::matmul(p, reads[0], reads[1], &mut w[0], reads[2]),
                Kernel::ActivationForward => k::activation_forward(p, reads[0], &mut w[0], reads[1]),
                Kernel::ActivationBackward => k::activation_backward(p, reads[0], &mut w[0], reads[1]),
                Kernel::Loss => {
                    let (g, a) = w.split_at_mut(1);
                    k::loss(p, reads[0], reads[1], &mut g[0], &mut a[0])
                }
                Kernel::Adam | Kernel::Sgd => {
                    let [param, m, v] = &mut w[..] else { unreachable!("three writable buffers") };
                    if kernel == Kernel::Adam {
                        k::adam(p, param, reads[0], m, v)
                    } else {
                        k::sgd(p, param, reads[0], m, v)
                    }
                }
                Kernel::DropoutForward => k::dropout_forward(p, reads[0], &mut w[0]),
                Kernel::DropoutBackward => k::dropout_backward(p, reads[0], &mut w[0], reads[1]),
                Kernel::BatchNormTrain => {
                    let [state, y, saved] = &mut w[..] else { unreachable!("three writable buffers") };
                    k::batchnorm_train(p, reads[0], reads[1], state, y, saved)
                }
                Kernel::BatchNormInfer => {
                    let [state, y] = &mut w[..] else { unreachable!("two writable buffers") };
                    k::batchnorm_infer(p, reads[0], reads[1], state, y)
                }
                Kernel::BatchNormBackward => {
                    let [saved, dx, grads] = &mut w[..] else { unreachable!("three writable buffers") };
                    k::batchnorm_backward(p, reads[0], reads[1], saved, reads[2], dx, grads, reads[3])
                }
            }
        }
        let mut taken = taken.into_iter();
        for (i, (_, access)) in spec.iter().enumerate() {
            if *access == Access::ReadWrite {
                self.buffers[bufs[i].0] = taken.next().expect("one per writable binding");
            }
        }
        Ok(())
    }
}

impl Backend for CpuBackend {
    fn create_buffer(&mut self, len: usize, _label: &str) -> Result<BufId> {
        let mut v = Vec::new();
        v.try_reserve_exact(len.max(1))
            .map_err(|_| Error::Gpu(format!("out of host memory allocating {len} values")))?;
        v.resize(len.max(1), 0.0);
        self.buffers.push(v);
        Ok(BufId(self.buffers.len() - 1))
    }

    fn write(&mut self, buf: BufId, offset: usize, data: &[f32]) -> Result<()> {
        let b = self.buffers.get_mut(buf.0).ok_or_else(|| Error::State(format!("internal: no buffer {buf:?}")))?;
        let end = offset + data.len();
        if end > b.len() {
            return Err(Error::State(format!("internal: write of {end} values past a buffer of {}", b.len())));
        }
        b[offset..end].copy_from_slice(data);
        Ok(())
    }

    fn bind(&mut self, kernel: Kernel, buffers: &[BufId]) -> Result<OpId> {
        check_bindings(kernel, buffers)?;
        for b in buffers {
            self.buffer(*b)?;
        }
        self.ops.push((kernel, buffers.to_vec()));
        Ok(OpId(self.ops.len() - 1))
    }

    fn run(&mut self, launches: &[Launch], reads: &[(BufId, Range<usize>)]) -> Result<Vec<Vec<f32>>> {
        for l in launches {
            match *l {
                Launch::Run { op, params } => self.launch(op, &params)?,
                Launch::Copy { src, src_off, dst, dst_off, len } => {
                    let data = self.buffer(src)?[src_off..src_off + len].to_vec();
                    self.write(dst, dst_off, &data)?;
                }
            }
        }
        reads
            .iter()
            .map(|(b, r)| {
                let buf = self.buffer(*b)?;
                buf.get(r.clone())
                    .map(|s| s.to_vec())
                    .ok_or_else(|| Error::State(format!("internal: read {r:?} past a buffer of {}", buf.len())))
            })
            .collect()
    }

    fn max_binding_values(&self) -> usize {
        usize::MAX / 4
    }
}
