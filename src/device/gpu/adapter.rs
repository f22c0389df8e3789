//! Which adapter a GPU device runs on: the backends searched, the adapters that can run compute
//! shaders ranked best first, and how an adapter is described.

use super::options::GpuOptions;
use crate::device::DeviceInfo;
use crate::error::Result;

fn rank(info: &wgpu::AdapterInfo) -> u32 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_name(b: wgpu::Backend) -> String {
    match b {
        wgpu::Backend::Vulkan => "vulkan".into(),
        wgpu::Backend::Metal => "metal".into(),
        wgpu::Backend::Dx12 => "dx12".into(),
        wgpu::Backend::Gl => "gl".into(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

pub(crate) fn describe(info: &wgpu::AdapterInfo) -> DeviceInfo {
    DeviceInfo {
        kind: "gpu".into(),
        adapter: info.name.clone(),
        backend: backend_name(info.backend),
        device_type: format!("{:?}", info.device_type),
    }
}

/// Adapters that can run our kernels (compute shaders), best first, after the options' filters.
pub(crate) fn candidates(options: &GpuOptions) -> Result<Vec<wgpu::Adapter>> {
    let requested = options.backends()?;
    // GL is asked only when named, or when no primary backend (Vulkan, Metal, DX12) has an
    // adapter: it is the weakest for compute, and probing EGL prints noise on headless machines.
    let tiers = if requested == wgpu::Backends::all() {
        vec![wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY]
    } else {
        vec![requested]
    };
    for backends in tiers {
        let adapters = adapters_for(backends, options);
        if !adapters.is_empty() {
            return Ok(adapters);
        }
    }
    Ok(Vec::new())
}

fn adapters_for(backends: wgpu::Backends, options: &GpuOptions) -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let mut adapters: Vec<wgpu::Adapter> = pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .filter(|a| a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS))
        .collect();
    if let Some(want) = options.adapter_filter() {
        adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(&want));
    }
    adapters.sort_by_key(|a| {
        let info = a.get_info();
        // Vulkan first among equals: the backend the kernels are tuned and tested on.
        (rank(&info), u32::from(info.backend != wgpu::Backend::Vulkan))
    });
    adapters
}

/// The backends probed without being asked: Vulkan, Metal and DX12. GL is probed only when
/// `WGFIT_BACKEND` names it (or `Device::gpu()` finds nothing else): its EGL drivers print to the
/// terminal on headless machines, and no hardware GPU is reachable only through it in practice.
fn quiet_backends(options: &GpuOptions) -> wgpu::Backends {
    match options.backends() {
        Ok(b) if b != wgpu::Backends::all() => b,
        _ => wgpu::Backends::PRIMARY,
    }
}

/// Descriptions of the adapters `Device::auto` chooses among: those of the quiet backends that
/// can run compute shaders, best first.
pub(crate) fn auto_candidates(options: &GpuOptions) -> Vec<DeviceInfo> {
    adapters_for(quiet_backends(options), options).iter().map(|a| describe(&a.get_info())).collect()
}

/// What `Device::auto` runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AutoChoice {
    /// The GPU path, on this adapter (its index among the candidates).
    Gpu(usize),
    /// The CPU path, and why.
    Cpu(String),
}

/// `Device::auto`'s rule over adapter descriptions (best first): the first hardware GPU (discrete
/// or integrated) wins; a software adapter (llvmpipe/lavapipe, WARP, SwiftShader: wgpu says
/// `Cpu`) or a virtual one is slower than the CPU path on every workload measured, so it is
/// passed over, and the reason names it.
pub(crate) fn auto_choice(adapters: &[DeviceInfo]) -> AutoChoice {
    let hardware = |d: &DeviceInfo| d.device_type == "DiscreteGpu" || d.device_type == "IntegratedGpu";
    if let Some(i) = adapters.iter().position(hardware) {
        return AutoChoice::Gpu(i);
    }
    match adapters.first() {
        Some(other) => AutoChoice::Cpu(format!(
            "no hardware GPU ({} is a {} adapter, slower than the CPU path here; `--device gpu`, \
             Device::gpu() or WGFIT_ADAPTER run it anyway)",
            other.adapter,
            if other.device_type == "Cpu" { "software" } else { "virtual or unknown" }
        )),
        None => AutoChoice::Cpu(
            "no GPU adapter (install a Vulkan driver for your GPU, e.g. mesa-vulkan-drivers, to use the GPU path)"
                .into(),
        ),
    }
}

/// Every adapter wgpu can see (of the backends the environment asks for; GL only when
/// `WGFIT_BACKEND=gl`), with the one `Device::gpu()` would pick marked.
pub(crate) fn list_adapters() -> Vec<(DeviceInfo, bool)> {
    let options = GpuOptions::from_env();
    let backends = quiet_backends(&options);
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let chosen = candidates(&options).ok().and_then(|c| c.first().map(|a| a.get_info()));
    pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            let picked = chosen.as_ref().is_some_and(|c| c.name == info.name && c.backend == info.backend);
            (describe(&info), picked)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str, device_type: &str) -> DeviceInfo {
        DeviceInfo {
            kind: "gpu".into(),
            adapter: name.into(),
            backend: "vulkan".into(),
            device_type: device_type.into(),
        }
    }

    #[test]
    fn auto_takes_hardware_gpus_and_passes_over_software_ones() {
        let discrete = desc("NVIDIA H200", "DiscreteGpu");
        let integrated = desc("Intel Iris Xe", "IntegratedGpu");
        let llvmpipe = desc("llvmpipe (LLVM 15.0.6, 256 bits)", "Cpu");
        let virt = desc("virtio", "VirtualGpu");
        assert_eq!(auto_choice(&[discrete.clone(), llvmpipe.clone()]), AutoChoice::Gpu(0));
        assert_eq!(auto_choice(std::slice::from_ref(&integrated)), AutoChoice::Gpu(0));
        // Best first, but a virtual adapter ranked ahead of a hardware one never wins.
        assert_eq!(auto_choice(&[virt.clone(), integrated]), AutoChoice::Gpu(1));
        match auto_choice(&[llvmpipe]) {
            AutoChoice::Cpu(why) => assert!(why.contains("llvmpipe") && why.contains("software"), "{why}"),
            other => panic!("{other:?}"),
        }
        match auto_choice(&[virt]) {
            AutoChoice::Cpu(why) => assert!(why.contains("virtio"), "{why}"),
            other => panic!("{other:?}"),
        }
        match auto_choice(&[]) {
            AutoChoice::Cpu(why) => assert!(why.contains("no GPU adapter"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
