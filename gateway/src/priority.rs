//! CPU priority of background threads: password hashing and the store's flusher run
//! below the proxy's worker threads, so under contention proxied requests win and the
//! background work takes the CPU they leave idle (SPEC P2, P3).
//!
//! Linux nice values are per thread, and a new thread inherits its creator's; elsewhere
//! these calls do nothing. Best effort: a failure is logged and the default priority kept.

/// Sets the calling thread's nice value (0 leaves it alone).
pub fn lower_current_thread(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority act on the calling thread only and touch no
        // memory of ours.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            tracing::warn!(nice, %error, "background thread keeps its priority");
        }
    }
}

/// Runs `f` on a new thread at `nice`, so that threads `f` spawns inherit that priority.
pub fn spawned_at<R: Send>(nice: i32, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        match s
            .spawn(|| {
                lower_current_thread(nice);
                f()
            })
            .join()
        {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The calling thread's nice value (Linux; 0 elsewhere).
pub fn current_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: as above; getpriority only reads.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }
    #[cfg(not(target_os = "linux"))]
    0
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn threads_spawned_below_inherit_the_lowered_priority() {
        let base = current_nice();
        let (own, child) = spawned_at(5, || {
            let child = std::thread::spawn(current_nice).join().unwrap();
            (current_nice(), child)
        });
        assert_eq!((own, child), ((base + 5).min(19), (base + 5).min(19)));
        assert_eq!(current_nice(), base, "the caller keeps its priority");
    }
}
