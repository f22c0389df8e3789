// Prepended to every kernel family (src/device/kernels.rs loads them all one way).
// Each family declares its launch record `P` (group 1, a dynamic offset per launch) as a
// `struct P_<family>` that mirrors its record in src/device/args.rs; storage buffers are group 0.
//
// The member axis: a plan trains K models of one architecture at once. Every buffer that belongs
// to a model holds K member blocks back to back; workgroup z is the member. Each record opens with
// `ms`, the member stride (in values) of storage bindings 1..12, written by the backend from the
// buffers it bound (0 for a buffer all members share, such as the dataset): a kernel moves every
// index of binding b by `gid.z * P.ms[(b - 1) / 4][(b - 1) % 4]` (written with constant indices:
// llvmpipe turns a dynamically indexed array into memory traffic on every use) and is otherwise
// the one-model kernel.

const ACT_LINEAR: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;
const ACT_TANH: u32 = 3u;
const ACT_ELU: u32 = 4u;
const ACT_SELU: u32 = 5u;
const ACT_LEAKY_RELU: u32 = 6u;
const SELU_SCALE: f32 = 1.0507009873554805;
const SELU_ALPHA: f32 = 1.6732632423543772;
const LEAKY_SLOPE: f32 = 0.2;

fn act_forward(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 1.0 / (1.0 + exp(-x)); }
        case 3u: { return tanh(x); }
        case 4u: { return select(exp(x) - 1.0, x, x > 0.0); }
        case 5u: { return SELU_SCALE * select(SELU_ALPHA * (exp(x) - 1.0), x, x > 0.0); }
        case 6u: { return select(LEAKY_SLOPE * x, x, x >= 0.0); }
        default: { return x; }
    }
}

// The activation's derivative, written from its output y = act(x) (all we keep), as TensorFlow's
// gradients do for these activations: at x = 0, relu's is 0, elu's and selu's the x > 0 side,
// leaky_relu's the slope.
fn act_grad_from_output(y: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return y * (1.0 - y); }
        case 3u: { return 1.0 - y * y; }
        case 4u: { return select(1.0, y + 1.0, y < 0.0); }
        case 5u: { return select(SELU_SCALE, y + SELU_SCALE * SELU_ALPHA, y < 0.0); }
        case 6u: { return select(LEAKY_SLOPE, 1.0, y > 0.0); }
        default: { return 1.0; }
    }
}

// Flat invocation index of a 1-D launch spread over x and y (x at most 65535 workgroups of 256).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Counter-based random bits (a 4-round Philox-like mix of 32-bit words): the same function is
// `device::cpu::kernels::random_bits`, so the GPU and the CPU draw identical dropout masks.
fn mix32(x: u32) -> u32 {
    var h = x;
    h = h ^ (h >> 16u);
    h = h * 0x7feb352du;
    h = h ^ (h >> 15u);
    h = h * 0x846ca68bu;
    h = h ^ (h >> 16u);
    return h;
}

fn random_bits(seed: u32, step: u32, layer: u32, index: u32) -> u32 {
    var h = mix32(seed ^ 0x9e3779b9u);
    h = mix32(h ^ step);
    h = mix32(h ^ (layer * 0x85ebca6bu));
    h = mix32(h ^ index);
    return h;
}

// Uniform in [0, 1) from the top 24 bits (exact in f32 on both devices).
fn random_unit(seed: u32, step: u32, layer: u32, index: u32) -> f32 {
    return f32(random_bits(seed, step, layer, index) >> 8u) * (1.0 / 16777216.0);
}


// Word offsets in a member's row of the member table (args.rs `member_table`): settings that
// differ between the members of a plan. MT_STEP: the member's updates before this epoch (u32
// bits), to which dropout adds the step's index in the epoch. Dropout layer l's rate and 1 / (1 - rate) are at
// MT_DROPOUT + 2 l and MT_DROPOUT + 2 l + 1.
const MT_ACTIVE: u32 = 0u;
const MT_SEED: u32 = 1u;
const MT_ONE_MINUS_BETA_1: u32 = 2u;
const MT_ONE_MINUS_BETA_2: u32 = 3u;
const MT_EPSILON: u32 = 4u;
const MT_MOMENTUM: u32 = 5u;
const MT_NESTEROV: u32 = 6u;
const MT_STEP: u32 = 7u;
const MT_RHO: u32 = 8u;
const MT_CENTERED: u32 = 9u;
const MT_AMSGRAD: u32 = 10u;
const MT_WEIGHT_DECAY: u32 = 11u;
const MT_CLIP_VALUE: u32 = 12u;
const MT_CLIP_NORM: u32 = 13u;
const MT_GLOBAL_CLIP_NORM: u32 = 14u;
const MT_ONE_MINUS_RHO: u32 = 15u;
const MT_DROPOUT: u32 = 16u;
