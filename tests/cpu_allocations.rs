//! Issue 15 item 4: the CPU path allocates nothing per training step. A counting allocator (this
//! test binary's own) sees every allocation of the process, rayon's pool threads included; a fit
//! with twice the steps may allocate only a few more times (the launch list and row orders grow
//! by doubling), where a GEMM crate that packs into fresh memory costs several per product.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wgfit::{BatchNormalization, Dense, Device, Dropout, Fit, Matrix, Sequential};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations of one 2-epoch fit on `rows` rows (batches of 128), the model and data built
/// before counting starts.
fn fit_allocations(rows: usize) -> usize {
    let x = Matrix::new(rows, 64, (0..rows * 64).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect()).unwrap();
    let y = Matrix::column((0..rows).map(|i| (i % 5) as f32).collect());
    let mut model = Sequential::new(
        &Device::cpu(),
        vec![
            Dense::new(256).activation("relu").input_shape(64),
            BatchNormalization::new(),
            Dropout::new(0.3),
            Dense::new(256).activation("relu"),
            BatchNormalization::new(),
            Dropout::new(0.3),
            Dense::new(1),
        ],
    );
    model.compile("adam", "mse", &[]).unwrap();
    // A first fit builds the plan, its buffers and any thread-local packing space.
    model.fit(&x, &y, Fit::new().epochs(1).batch_size(128).verbose(0).seed(1)).unwrap();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    model.fit(&x, &y, Fit::new().epochs(2).batch_size(128).verbose(0).seed(2)).unwrap();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// 32 more steps (16 per epoch; 11 products each, 128 x 256 x 256 ones on two threads) cost at
/// most a handful of allocations. Claimed where faer runs its own kernels (x86-64 with AVX2 and
/// FMA); elsewhere faer hands products to the `gemm` crate, which allocates, and the test says so.
#[test]
fn cpu_training_steps_do_not_allocate() {
    #[cfg(target_arch = "x86_64")]
    let own_kernels = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let own_kernels = false;
    if !own_kernels {
        eprintln!("cpu_training_steps_do_not_allocate: not claimed on this CPU (no x86-64 AVX2/FMA: faer uses gemm)");
        return;
    }
    let (short, long) = (fit_allocations(2048), fit_allocations(4096));
    let extra_steps = 2 * (4096 - 2048) / 128;
    assert!(
        long <= short + 8,
        "the CPU path allocated per step: {short} allocations in a 2-epoch fit of 16 steps per epoch, {long} with \
         {extra_steps} more steps"
    );
}
