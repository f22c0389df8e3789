//! [`GpuOptions`]: every setting of the GPU path, from the `WGFIT_*` environment variables
//! ([`GpuOptions::from_env`], the only place the GPU path reads them) or set in code.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// The default of [`GpuOptions::timeout`] (and of `WGFIT_GPU_TIMEOUT_S`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The backend names [`GpuOptions::backend`] accepts, for error messages.
const BACKEND_NAMES: &str = "vulkan, metal, dx12, gl";

/// How [`Device::gpu_with`](crate::Device::gpu_with) picks and drives a GPU adapter. Start from
/// [`GpuOptions::from_env`] (what [`Device::gpu`](crate::Device::gpu) uses) or
/// [`GpuOptions::default`] (the environment ignored) and override settings with the builder methods.
///
/// ```no_run
/// use std::time::Duration;
/// use wgfit::{Device, GpuOptions};
///
/// # fn main() -> wgfit::Result<()> {
/// let device = Device::gpu_with(GpuOptions::from_env().adapter("llvmpipe").timeout(Duration::from_secs(60)))?;
/// # Ok(())
/// # }
/// ```
///
/// Invalid values (an unknown backend name, a timeout that is not a number of seconds, an
/// unreadable WGSL file) are reported by `Device::gpu_with`, naming the variable or method.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// A substring of the adapter's name (any case), and who set it.
    adapter: Option<(String, &'static str)>,
    /// The backend's name as given, and who set it (checked when the device is opened).
    backend: Option<(String, &'static str)>,
    /// The longest wait on the GPU, or the unreadable value of `WGFIT_GPU_TIMEOUT_S`.
    timeout: std::result::Result<Duration, String>,
    textures: bool,
    subgroups: bool,
    scalar_matmul: bool,
    /// Some(true): every product tiled; Some(false): never; None: by adapter and shape.
    tiled_matmul: Option<bool>,
    /// Which tiled configuration when a product is tiled (64 or 128 per side); None: by shape.
    tile: Option<u32>,
    /// Tiled products stage aligned operands by vec4 loads.
    tiled_vec4: bool,
    /// Tiled products whose bounds the host proves run the module without runtime checks.
    unchecked_products: bool,
    profile: bool,
    /// A WGSL file that replaces shaders/dense.wgsl, and who set it.
    dense_wgsl: Option<(PathBuf, &'static str)>,
    max_buffer_size: Option<u64>,
    max_storage_buffer_binding_size: Option<u64>,
    /// The most device memory one dataset may take, or the unreadable value of
    /// `WGFIT_MAX_DATA_BYTES`.
    max_data_bytes: std::result::Result<Option<u64>, String>,
}

impl Default for GpuOptions {
    /// The best adapter of any backend, a 600 s timeout, every matmul variant the adapter allows,
    /// the adapter's own limits; the environment is not read.
    fn default() -> Self {
        GpuOptions {
            adapter: None,
            backend: None,
            timeout: Ok(DEFAULT_TIMEOUT),
            textures: true,
            subgroups: true,
            scalar_matmul: false,
            tiled_matmul: None,
            tile: None,
            tiled_vec4: true,
            unchecked_products: false,
            profile: false,
            dense_wgsl: None,
            max_buffer_size: None,
            max_storage_buffer_binding_size: None,
            max_data_bytes: Ok(None),
        }
    }
}

impl GpuOptions {
    /// The defaults, overridden by the environment:
    ///
    /// - `WGFIT_ADAPTER`: a substring of the adapter's name ([`GpuOptions::adapter`]);
    /// - `WGFIT_BACKEND`: vulkan, metal, dx12 or gl ([`GpuOptions::backend`]);
    /// - `WGFIT_GPU_TIMEOUT_S`: whole seconds ([`GpuOptions::timeout`], default 600);
    /// - `WGFIT_TEXTURES=0`: no texture operands ([`GpuOptions::textures`]);
    /// - `WGFIT_SUBGROUPS=0`: no subgroup kernels ([`GpuOptions::subgroups`]);
    /// - `WGFIT_MATMUL=scalar`: the reference matmul only ([`GpuOptions::scalar_matmul`]);
    /// - `WGFIT_MATMUL=tiled` / `untiled`: the workgroup-tiled matmul for every product / for
    ///   none ([`GpuOptions::tiled_matmul`]); `tiled64` / `tiled128`: every product tiled, in
    ///   that configuration (64 or 128 of C per side per workgroup; otherwise chosen by shape);
    /// - `WGFIT_TILED_VEC4=0`: tiled products load their operands by scalars only
    ///   ([`GpuOptions::tiled_vec4_loads`]);
    /// - `WGFIT_UNCHECKED=1`: tiled products run without shader runtime checks where the host
    ///   proves their bounds ([`GpuOptions::unchecked_products`]);
    /// - `WGFIT_DENSE_WGSL=<path>`: replaces shaders/dense.wgsl ([`GpuOptions::dense_wgsl`]);
    /// - `WGFIT_PROFILE=1`: profile every fit, from timestamp queries ([`GpuOptions::profile`];
    ///   the CPU path reads it too and times its kernels on the host).
    /// - `WGFIT_MAX_DATA_BYTES=<bytes>`: stream larger datasets in chunks
    ///   ([`GpuOptions::max_data_bytes`]; a whole number, optionally with KiB, MiB or GiB).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let timeout = match var("WGFIT_GPU_TIMEOUT_S").filter(|t| !t.trim().is_empty()) {
            Some(t) => t.trim().parse::<u64>().map(Duration::from_secs).map_err(|_| t),
            None => Ok(DEFAULT_TIMEOUT),
        };
        // One reading of WGFIT_MATMUL for the three choices it makes.
        let matmul = var("WGFIT_MATMUL").map(|v| v.to_ascii_lowercase());
        GpuOptions {
            adapter: var("WGFIT_ADAPTER").map(|a| (a, "WGFIT_ADAPTER")),
            backend: var("WGFIT_BACKEND").map(|b| (b, "WGFIT_BACKEND")),
            timeout,
            textures: var("WGFIT_TEXTURES").is_none_or(|v| v != "0"),
            subgroups: var("WGFIT_SUBGROUPS").is_none_or(|v| v != "0"),
            scalar_matmul: matmul.as_deref() == Some("scalar"),
            tiled_matmul: match matmul.as_deref() {
                Some("tiled" | "tiled64" | "tiled128") => Some(true),
                Some("untiled") => Some(false),
                _ => None,
            },
            tile: match matmul.as_deref() {
                Some("tiled64") => Some(64),
                Some("tiled128") => Some(128),
                _ => None,
            },
            tiled_vec4: var("WGFIT_TILED_VEC4").is_none_or(|v| v != "0"),
            unchecked_products: var("WGFIT_UNCHECKED").is_some_and(|v| v == "1"),
            dense_wgsl: std::env::var_os("WGFIT_DENSE_WGSL").map(|p| (PathBuf::from(p), "WGFIT_DENSE_WGSL")),
            profile: var("WGFIT_PROFILE").is_some_and(|v| v == "1"),
            max_buffer_size: None,
            max_storage_buffer_binding_size: None,
            max_data_bytes: match var("WGFIT_MAX_DATA_BYTES").filter(|v| !v.trim().is_empty()) {
                Some(v) => parse_bytes(&v).map(Some).ok_or(v),
                None => Ok(None),
            },
        }
    }

    /// Only adapters whose name contains `name` (any case), e.g. "llvmpipe".
    pub fn adapter(mut self, name: impl Into<String>) -> Self {
        self.adapter = Some((name.into(), "GpuOptions::adapter"));
        self
    }

    /// Only this backend: "vulkan", "metal", "dx12" or "gl" ("all" or "" for any).
    pub fn backend(mut self, name: impl Into<String>) -> Self {
        self.backend = Some((name.into(), "GpuOptions::backend"));
        self
    }

    /// The longest any wait on the GPU may take before it is an error (default 600 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Ok(timeout);
        self
    }

    /// Large matmuls may read their operands from packed textures where the adapter allows
    /// (llvmpipe); `false` turns that off. Default true.
    pub fn textures(mut self, on: bool) -> Self {
        self.textures = on;
        self
    }

    /// Matmuls may use the subgroup kernels where the adapter allows (llvmpipe); `false` turns
    /// them off, and the texture operands with them. Default true.
    pub fn subgroups(mut self, on: bool) -> Self {
        self.subgroups = on;
        self
    }

    /// Every matmul runs the scalar reference kernel (comparisons). Default false.
    pub fn scalar_matmul(mut self, on: bool) -> Self {
        self.scalar_matmul = on;
        self
    }

    /// `Some(true)`: every matmul runs the workgroup-tiled kernel (checks on software adapters);
    /// `Some(false)`: none does (comparisons on hardware). Default `None`: hardware GPUs tile
    /// products of 64 rows and columns or more.
    pub fn tiled_matmul(mut self, choice: Option<bool>) -> Self {
        self.tiled_matmul = choice;
        self
    }

    /// Tiled products read an operand as vec4s along its contiguous axis where its offset and
    /// other stride are multiples of 4 (a launch's layout decides, per operand); `false` keeps
    /// the scalar loads everywhere (comparisons on hardware). Default true.
    pub fn tiled_vec4_loads(mut self, on: bool) -> Self {
        self.tiled_vec4 = on;
        self
    }

    /// Tiled products run from a shader module built without wgpu's runtime checks (bounds
    /// clamping, loop bounding, guarded integer division) for every launch whose indices the host
    /// proves in range from its arguments and its buffers' sizes; other launches keep the checked
    /// module. Off by default until hardware measurements show a gain (`scripts/gpu-proof` times
    /// both); on llvmpipe an unchecked module gave no clear gain.
    pub fn unchecked_products(mut self, on: bool) -> Self {
        self.unchecked_products = on;
        self
    }

    /// Kernel development: the WGSL file at `path` replaces shaders/dense.wgsl (no rebuild).
    pub fn dense_wgsl(mut self, path: impl Into<PathBuf>) -> Self {
        self.dense_wgsl = Some((path.into(), "GpuOptions::dense_wgsl"));
        self
    }

    /// Asks the device for this `max_buffer_size` instead of the adapter's (tests of the limit checks).
    pub fn max_buffer_size(mut self, bytes: u64) -> Self {
        self.max_buffer_size = Some(bytes);
        self
    }

    /// Asks the device for this `max_storage_buffer_binding_size` instead of the adapter's.
    pub fn max_storage_buffer_binding_size(mut self, bytes: u64) -> Self {
        self.max_storage_buffer_binding_size = Some(bytes);
        self
    }

    /// The most device memory one dataset (training, validation, or the rows given to evaluate or
    /// predict) may take. A dataset whose device copy would be larger is not uploaded whole: it
    /// streams through one chunk buffer of at most `bytes` (all of a sweep's models' rows
    /// together), refilled from host memory between groups of steps, each group's rows gathered
    /// on the host in the epoch's shuffled order. The batches, and so the History, are
    /// bit-identical to an upload of the whole dataset; the cost is one submission per chunk and
    /// the host's copy of the rows. A chunk must hold at least one batch: a smaller limit is an
    /// [`Error::InvalidValue`](crate::Error::InvalidValue) naming both sizes.
    ///
    /// Default: no limit of its own; data larger than the adapter's largest buffer binding streams
    /// anyway, through chunks of at most that binding (and at most 256 MiB). Use this when the data
    /// fits one binding but not the device's memory, or to leave memory to other work.
    ///
    /// ```no_run
    /// use wgfit::{Device, GpuOptions};
    /// # fn main() -> wgfit::Result<()> {
    /// // At most 64 MiB of device memory for the data, whatever its size.
    /// let device = Device::gpu_with(GpuOptions::from_env().max_data_bytes(64 << 20))?;
    /// # let _ = device;
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_data_bytes(mut self, bytes: u64) -> Self {
        self.max_data_bytes = Ok(Some(bytes));
        self
    }

    pub(crate) fn max_data_bytes_value(&self) -> Result<Option<u64>> {
        self.max_data_bytes.clone().map_err(|value| {
            Error::invalid("WGFIT_MAX_DATA_BYTES", value, "a whole number of bytes, optionally with KiB, MiB or GiB")
        })
    }

    /// The backends to search, or an error naming who set an unknown one.
    pub(crate) fn backends(&self) -> Result<wgpu::Backends> {
        let Some((name, by)) = &self.backend else { return Ok(wgpu::Backends::all()) };
        match name.trim().to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
            "metal" | "mtl" => Ok(wgpu::Backends::METAL),
            "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
            "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
            "" | "all" => Ok(wgpu::Backends::all()),
            _ => Err(Error::UnknownName { kind: by, name: name.clone(), valid: BACKEND_NAMES.into() }),
        }
    }

    /// The lowercase substring adapter names must contain, if any.
    /// Whether the adapter or the backend was named (by the environment or a builder method):
    /// then the user asked for the GPU path, software adapter or not.
    pub(crate) fn names_a_gpu(&self) -> bool {
        self.adapter.is_some() || self.backend.as_ref().is_some_and(|(b, _)| !matches!(b.trim(), "" | "all"))
    }

    pub(crate) fn adapter_filter(&self) -> Option<String> {
        self.adapter.as_ref().map(|(a, _)| a.to_ascii_lowercase())
    }

    /// What narrowed the search, for the no-adapter error (" matching WGFIT_ADAPTER=\"x\"").
    pub(crate) fn no_adapter_detail(&self) -> String {
        match (&self.adapter, &self.backend) {
            (Some((a, by)), _) => format!(" matching {by}={a:?}"),
            (_, Some((b, by))) => format!(" for {by}={b:?}"),
            _ => String::new(),
        }
    }

    pub(crate) fn timeout_value(&self) -> Result<Duration> {
        self.timeout.clone().map_err(|value| Error::invalid("WGFIT_GPU_TIMEOUT_S", value, "a whole number of seconds"))
    }

    pub(crate) fn textures_on(&self) -> bool {
        self.textures
    }

    pub(crate) fn subgroups_on(&self) -> bool {
        self.subgroups
    }

    pub(crate) fn scalar_matmul_on(&self) -> bool {
        self.scalar_matmul
    }

    pub(crate) fn tiled_matmul_choice(&self) -> Option<bool> {
        self.tiled_matmul
    }

    /// The tiled configuration `WGFIT_MATMUL` asked for, if one (64 or 128 per side).
    pub(crate) fn tile_choice(&self) -> Option<u32> {
        self.tile
    }

    pub(crate) fn tiled_vec4_on(&self) -> bool {
        self.tiled_vec4
    }

    pub(crate) fn unchecked_products_on(&self) -> bool {
        self.unchecked_products
    }

    /// Profile every fit on this device ([`Fit::profile`](crate::Fit::profile) for one fit): after
    /// each epoch, the time per kernel, the epoch's wall time and the remainder go to stderr and
    /// into [`History::profile`](crate::History::profile). The device is opened with the
    /// adapter's timestamp-query features (asked for only here, so an unprofiled device is opened
    /// as before): timestamps are written between the dispatches of the epoch's own recording and
    /// read back with its results, one submission as without the profiler. An adapter without
    /// them is said so once, and each dispatch is then submitted, waited for and timed alone
    /// (slower epochs, and every time includes a submission).
    pub fn profile(mut self, on: bool) -> Self {
        self.profile = on;
        self
    }

    pub(crate) fn profile_on(&self) -> bool {
        self.profile
    }

    /// The text of the replacement for shaders/dense.wgsl, if one is set.
    pub(crate) fn dense_wgsl_text(&self) -> Result<Option<String>> {
        let Some((path, by)) = &self.dense_wgsl else { return Ok(None) };
        std::fs::read_to_string(path)
            .map(Some)
            .map_err(|e| Error::invalid(*by, path.display(), format!("a readable WGSL file ({e})")))
    }

    /// The limits to ask of `adapter`: its own, with the overrides.
    pub(crate) fn limits(&self, adapter: &wgpu::Limits) -> wgpu::Limits {
        let mut limits = adapter.clone();
        if let Some(b) = self.max_buffer_size {
            limits.max_buffer_size = b;
        }
        if let Some(b) = self.max_storage_buffer_binding_size {
            limits.max_storage_buffer_binding_size = b;
        }
        limits
    }
}

/// A byte count as `WGFIT_MAX_DATA_BYTES` takes it: a whole number, optionally followed by KiB,
/// MiB or GiB (K, M, G, KB, MB, GB mean the same binary units).
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let shift = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_source() {
        let e = GpuOptions::default().backend("vulcan").backends().unwrap_err();
        assert!(e.to_string().contains("GpuOptions::backend"), "{e}");
        let o = GpuOptions {
            backend: Some(("opengles".into(), "WGFIT_BACKEND")),
            timeout: Err("ten".into()),
            ..GpuOptions::default()
        };
        assert!(o.backends().unwrap_err().to_string().contains("WGFIT_BACKEND"));
        assert!(o.timeout_value().unwrap_err().to_string().contains("WGFIT_GPU_TIMEOUT_S"));
        let o = o.backend("GL").timeout(Duration::ZERO);
        assert_eq!(o.backends().unwrap(), wgpu::Backends::GL);
        assert_eq!(o.timeout_value().unwrap(), Duration::ZERO);
        let e = GpuOptions::default().dense_wgsl("/nonexistent/dense.wgsl").dense_wgsl_text().unwrap_err();
        assert!(e.to_string().contains("GpuOptions::dense_wgsl"), "{e}");
        let o = GpuOptions { max_data_bytes: Err("lots".into()), ..GpuOptions::default() };
        assert!(o.max_data_bytes_value().unwrap_err().to_string().contains("WGFIT_MAX_DATA_BYTES"));
        assert_eq!(o.max_data_bytes(7).max_data_bytes_value().unwrap(), Some(7));
    }

    #[test]
    fn byte_counts_take_binary_units() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes(" 64 MiB "), Some(64 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("3kb"), Some(3072));
        assert_eq!(parse_bytes("1.5G"), None);
        assert_eq!(parse_bytes("MiB"), None);
        assert_eq!(parse_bytes("99999999999999999999G"), None);
    }
}
