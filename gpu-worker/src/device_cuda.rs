//! CUDA devices (only with the `cuda` cargo feature): discovery, one Candle `Device`
//! per ordinal created once, free-memory readings, and the release step of the
//! eviction protocol from `reference/candle.md` §5 — after the model's tensors are
//! dropped on the owner thread: synchronise the context, trim the default memory pool,
//! then read free memory (and so surface any error the drop deferred).
//!
//! Written against candle 0.11.1 / cudarc 0.19 by reading their sources. CI has no
//! GPU and never builds this file; it type-checks against CUDA 13.4 (docs/worker.md,
//! "Checking the CUDA build") and has never run on a GPU.

use candle_core::Device;
use candle_core::cuda_backend::cudarc::driver::{CudaContext, sys};

use crate::backend::DeviceMemory;

/// Every requested CUDA GPU as `(ordinal, device, total bytes)`. `None` means all.
pub fn discover(ordinals: Option<&[usize]>) -> Result<Vec<(usize, Device, u64)>, String> {
    let count = CudaContext::device_count().map_err(|e| format!("no CUDA driver: {e}"))?;
    let wanted: Vec<usize> = match ordinals {
        Some(list) => list.to_vec(),
        None => (0..count.max(0) as usize).collect(),
    };
    if wanted.is_empty() {
        return Err("no CUDA GPUs found".to_string());
    }
    wanted
        .into_iter()
        .map(|ordinal| {
            if ordinal >= count as usize {
                return Err(format!("CUDA ordinal {ordinal} does not exist ({count} GPUs)"));
            }
            // One Device per GPU for the whole process: every `new_cuda` call makes a
            // new device identity (reference/candle.md §1.1).
            let device = Device::new_cuda(ordinal).map_err(|e| format!("cuda:{ordinal}: {e}"))?;
            let total = memory(&device).map(|m| m.total).ok_or_else(|| format!("cuda:{ordinal}: cannot read memory"))?;
            Ok((ordinal, device, total))
        })
        .collect()
}

/// Free and total memory of `device`'s GPU (binds the context to this thread first).
pub fn memory(device: &Device) -> Option<DeviceMemory> {
    let Device::Cuda(cuda) = device else { return None };
    let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
    Some(DeviceMemory { total: total as u64, free: free as u64 })
}

/// Gives dropped models' memory back to the driver: synchronise the context so the
/// stream-ordered frees land, then trim the default pool so `cuMemGetInfo` sees them.
pub fn release(device: &Device) {
    let Device::Cuda(cuda) = device else { return };
    let stream = cuda.cuda_stream();
    let ctx = stream.context();
    if let Err(e) = ctx.synchronize() {
        tracing::warn!(error = %e, "context synchronise after unload failed");
        return;
    }
    if !ctx.has_async_alloc() {
        return;
    }
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: plain driver calls on this thread's bound context (synchronize bound it);
    // `pool` is a valid out-pointer, and the pool handle is owned by the driver.
    // Trimming releases only blocks that no live allocation uses.
    #[allow(unsafe_code)]
    unsafe {
        if sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) == sys::CUresult::CUDA_SUCCESS {
            let _ = sys::cuMemPoolTrimTo(pool, 0);
        }
    }
}
