//! [`retain_freed_memory`]: let a training loop reuse the pages of its
//! previous step instead of getting fresh ones from the operating system.

/// Asks the C allocator to keep the memory freed inside the process for
/// reuse instead of handing it back to the operating system. Call it once,
/// at start-up; it returns whether the setting took effect.
///
/// A training step allocates the same tensors at every step (activations,
/// their gradients, convolution scratch) and frees them when its graph is
/// dropped. glibc's default serves every block above its mmap threshold
/// (128 KiB, adapting up to 32 MiB) with a fresh `mmap` and unmaps it on
/// free, and returns the top of the heap to the system once more than twice
/// that threshold is free there. Either way, the next step takes a page fault
/// for each 4 KiB page of its hundreds of megabytes and the kernel zeroes
/// them again. For the CIFAR ResNet-20 at batch 128, page faults were about
/// 15% of a step's profile samples; with this call the median step went from
/// 562 to 485 ms (4 interleaved runs each, 2 cores). With this call, large blocks come
/// from the heap (no `mmap`) and the heap is not trimmed, so after the first
/// step every allocation reuses memory the process already has.
///
/// The peak memory does not grow: the resident memory just stays at its
/// peak until the process exits, which is what a training run does anyway.
///
/// Returns `true` on Linux with glibc; elsewhere it does nothing and
/// returns `false` (other allocators have their own policies).
///
/// # Examples
/// ```
/// // First thing in `main`, before the training loop.
/// let retained = gradlab_tensor::retain_freed_memory();
/// assert_eq!(retained, cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes glibc's allocation parameters under
        // the allocator's own lock; it has no memory-safety preconditions.
        let (no_mmap, no_trim) = unsafe {
            (
                libc::mallopt(libc::M_MMAP_MAX, 0),
                libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX),
            )
        };
        no_mmap == 1 && no_trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
