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

/// Every adapter wgpu can see (of the backends the environment asks for), with the one
/// `Device::gpu()` would pick marked.
pub(crate) fn list_adapters() -> Vec<(DeviceInfo, bool)> {
    let options = GpuOptions::from_env();
    let backends = options.backends().unwrap_or(wgpu::Backends::all());
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
