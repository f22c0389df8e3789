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
const ACT_SOFTPLUS: u32 = 7u;
const ACT_SILU: u32 = 8u;
const ACT_GELU: u32 = 9u;
const ACT_GELU_TANH: u32 = 10u;
const SELU_SCALE: f32 = 1.0507009873554805;
const SELU_ALPHA: f32 = 1.6732632423543772;
const LEAKY_SLOPE: f32 = 0.2;

// erf and erfc in f32: erf(x) = x P(x^2) below 0.875, erfc(t) = exp(Q(t)) from 0.875 to 3.95
// (beyond, erfc is below 2e-8 and taken as 0). erf's relative error is below 2.5e-7 (about 2 ulp)
// everywhere; erfc's below 5e-6, the rounding of its f32 logarithm, which gelu reads only in its
// tail (where its values are below 1e-5 |x|). P and Q are least-squares fits of erf(x)/x
// (relative weight) and log(erfc(t)); the CPU twins `erf`, `erfc` in src/device/cpu/kernels.rs
// use the same coefficients. gelu uses erfc for its lower tail, where 1 + erf would cancel.
fn erf_small(x: f32) -> f32 {
    let s = x * x;
    var p = 8.776225877227262e-05;
    p = p * s - 0.0008232922991737723;
    p = p * s + 0.00520850857719779;
    p = p * s - 0.026862235739827156;
    p = p * s + 0.11283744126558304;
    p = p * s - 0.37612637877464294;
    p = p * s + 1.128379225730896;
    return x * p;
}

// erfc(t) for t >= 0.875.
fn erfc_tail(t: f32) -> f32 {
    if (t >= 3.95) { return 0.0; }
    var q = 1.63782999607065e-06;
    q = q * t - 4.602995250024833e-05;
    q = q * t + 0.0005962118739262223;
    q = q * t - 0.004755112808197737;
    q = q * t + 0.02640349231660366;
    q = q * t - 0.11004029214382172;
    q = q * t - 0.6318776607513428;
    q = q * t - 1.1301977634429932;
    q = q * t + 0.000309971917886287;
    return exp(q);
}

fn erf_f32(x: f32) -> f32 {
    if (abs(x) < 0.875) { return erf_small(x); }
    return sign(x) * (1.0 - erfc_tail(abs(x)));
}

fn erfc_f32(x: f32) -> f32 {
    if (abs(x) < 0.875) { return 1.0 - erf_small(x); }
    let e = erfc_tail(abs(x));
    return select(2.0 - e, e, x > 0.0);
}

const SQRT_HALF: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_CUBIC: f32 = 0.044715;

// log(1 + e) accurate for small e (Goldberg's trick: WGSL has no log1p).
fn log1p_f32(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) { return e; }
    return log(u) * (e / (u - 1.0));
}

// softplus(x) = log(1 + e^x), written max(x, 0) + log1p(e^-|x|) so it neither overflows nor
// loses the tiny values of large negative x.
fn softplus_f32(x: f32) -> f32 {
    return max(x, 0.0) + log1p_f32(exp(-abs(x)));
}

fn sigmoid_f32(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn act_forward(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 1.0 / (1.0 + exp(-x)); }
        case 3u: { return tanh(x); }
        case 4u: { return select(exp(x) - 1.0, x, x > 0.0); }
        case 5u: { return SELU_SCALE * select(SELU_ALPHA * (exp(x) - 1.0), x, x > 0.0); }
        case 6u: { return select(LEAKY_SLOPE * x, x, x >= 0.0); }
        case 7u: { return softplus_f32(x); }
        case 8u: { return x * sigmoid_f32(x); }
        case 9u: { return 0.5 * x * erfc_f32(-x * SQRT_HALF); }
        // 0.5 (1 + tanh(u)) written as sigmoid(2u): no cancellation where tanh(u) nears -1.
        case 10u: { return x * sigmoid_f32(2.0 * SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)); }
        default: { return x; }
    }
}

// The activation's derivative, written from its output y = act(x), as TensorFlow's gradients do
// for these activations: at x = 0, relu's is 0, elu's and selu's the x > 0 side, leaky_relu's the
// slope; softplus's is sigmoid(x) = 1 - e^-y (as -expm1(-y) for small y). silu and gelu cannot be
// inverted: for them `y` is the pre-activation x, which their layers keep for this purpose
// (`Activation::needs_preactivation`: a Dense layer writes it to its own buffer, an Activation
// layer's input is it), and which the plan binds in place of the output wherever a derivative is read.
fn act_grad_from_output(y: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return y * (1.0 - y); }
        case 3u: { return 1.0 - y * y; }
        case 4u: { return select(1.0, y + 1.0, y < 0.0); }
        case 5u: { return select(SELU_SCALE, y + SELU_SCALE * SELU_ALPHA, y < 0.0); }
        case 6u: { return select(LEAKY_SLOPE, 1.0, y > 0.0); }
        case 7u: { return select(1.0 - exp(-y), y * (1.0 - y * (0.5 - y * (1.0 / 6.0))), abs(y) < 0.01); }
        case 8u: {
            let s = sigmoid_f32(y);
            return s + y * s * (1.0 - s);
        }
        case 9u: { return 0.5 * erfc_f32(-y * SQRT_HALF) + y * INV_SQRT_2PI * exp(-0.5 * y * y); }
        case 10u: {
            let g = sigmoid_f32(2.0 * SQRT_2_OVER_PI * (y + GELU_CUBIC * y * y * y));
            return g + 2.0 * y * g * (1.0 - g) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * y * y);
        }
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
