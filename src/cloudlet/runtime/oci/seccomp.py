"""The ``RuntimeDefault`` seccomp profile, rendered as an OCI ``linux.seccomp`` object.

Kubernetes' ``seccompProfile: {type: RuntimeDefault}`` means "the container
runtime's default allowlist". Ours follows the widely used runtime-default
policy: the default action is ``SCMP_ACT_ERRNO`` (``EPERM``), and the syscalls
ordinary programs need are allowed. Syscalls that only make sense with a
capability (``mount`` and ``unshare`` with ``CAP_SYS_ADMIN``, ``ptrace``
helpers, ``reboot``, module loading, clock setting, ...) are allowed only when
the container holds that capability, so adding a capability in the
securityContext also opens the matching syscalls. Without ``CAP_SYS_ADMIN``
``clone`` may not create namespaces and ``clone3`` answers ``ENOSYS`` (so libc
falls back to ``clone``, whose flags seccomp can inspect).

Names unknown to the host's libseccomp are skipped by runc, so the lists may
name syscalls of newer kernels. The OCI profile format has no capability
conditions: :func:`default_profile` resolves them for one container.
"""

from __future__ import annotations

from typing import Any

EPERM = 1
ENOSYS = 38

ARCHITECTURES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]

# Namespace flags of clone(2): CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
# CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
CLONE_NAMESPACE_FLAGS = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)

# Grouped by what they are for; all allowed to every container.
_FILES = """
access chdir chmod chown chown32 close close_range copy_file_range creat dup dup2 dup3
faccessat faccessat2 fadvise64 fadvise64_64 fallocate fchdir fchmod fchmodat fchmodat2
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fremovexattr
fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futimesat
getcwd getdents getdents64 getxattr lchown lchown32 lgetxattr link linkat listxattr
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 mkdir mkdirat mknod mknodat
newfstatat open openat openat2 pread64 preadv preadv2 pwrite64 pwritev pwritev2 read
readahead readlink readlinkat readv removexattr rename renameat renameat2 rmdir sendfile
sendfile64 setxattr splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs tee truncate truncate64 umask unlink unlinkat utime utimensat
utimensat_time64 utimes vmsplice write writev name_to_handle_at
"""

_EVENTS = """
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 fanotify_mark inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64
io_setup io_submit io_uring_enter io_uring_register io_uring_setup poll ppoll
ppoll_time64 pselect6 pselect6_time64 select _newselect signalfd signalfd4 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
"""

_MEMORY = """
brk cachestat madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mlock
mlock2 mlockall mmap mmap2 mprotect mremap msync munlock munlockall munmap pkey_alloc
pkey_free pkey_mprotect remap_file_pages
"""

_PROCESSES = """
arch_prctl capget capset execve execveat exit exit_group fork getcpu getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpgid getpgrp getpid
getppid getpriority getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid get_thread_area gettid getuid getuid32 ioprio_get ioprio_set kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self pidfd_open
pidfd_send_signal prctl prlimit64 process_mrelease ptrace process_vm_readv
process_vm_writev restart_syscall rseq sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32
setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid set_thread_area set_tid_address setuid setuid32 tgkill tkill
ugetrlimit vfork wait4 waitid waitpid modify_ldt
"""

_SIGNALS_TIME = """
alarm clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake gettimeofday nanosleep pause rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask sigreturn time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 times adjtimex getrandom sysinfo uname
"""

_IPC_NET = """
accept accept4 bind connect getpeername getsockname getsockopt listen recv recvfrom
recvmmsg recvmmsg_time64 recvmsg send sendmmsg sendmsg sendto setsockopt shutdown
socketcall socketpair ipc mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink msgctl msgget msgrcv
msgsnd semctl semget semop semtimedop semtimedop_time64 shmat shmctl shmdt shmget
pipe pipe2 ioctl
"""

ALWAYS_ALLOWED: tuple[str, ...] = tuple(
    sorted(
        {
            name
            for group in (_FILES, _EVENTS, _MEMORY, _PROCESSES, _SIGNALS_TIME, _IPC_NET)
            for name in group.split()
        }
    )
)

# Syscalls opened up by holding a capability (Linux capability names, no CAP_ prefix).
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "SYS_ADMIN": (
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
        "mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname "
        "sethostname setns syslog umount umount2 unshare"
    ).split(),
    "DAC_READ_SEARCH": ("open_by_handle_at",),
    "SYS_BOOT": ("reboot",),
    "SYS_CHROOT": ("chroot",),
    "SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "SYS_PACCT": ("acct",),
    "SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "SYS_RAWIO": ("iopl", "ioperm"),
    "SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "SYS_TTY_CONFIG": ("vhangup",),
    "SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "SYSLOG": ("syslog",),
    "BPF": ("bpf",),
    "PERFMON": ("perf_event_open",),
}

# personality(2) personas a container may switch to: PER_LINUX, PER_LINUX32,
# UNAME26, UNAME26|PER_LINUX32, and the query value 0xffffffff.
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# socket(2) for every address family but AF_VSOCK (host/guest sockets).
AF_VSOCK = 40


def default_profile(capabilities: list[str] | set[str]) -> dict[str, Any]:
    """The RuntimeDefault profile for a container holding ``capabilities``."""
    caps = {c.upper().removeprefix("CAP_") for c in capabilities}
    allowed = set(ALWAYS_ALLOWED)
    for cap, names in BY_CAPABILITY.items():
        if cap in caps:
            allowed.update(names)
    rules: list[dict[str, Any]] = [
        {"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}],
        },
    ]
    for persona in PERSONAS:
        rules.append(
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}],
            }
        )
    if "SYS_ADMIN" not in caps:
        # clone without namespace flags only; clone3 cannot be inspected.
        rules.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [
                    {
                        "index": 0,
                        "value": CLONE_NAMESPACE_FLAGS,
                        "valueTwo": 0,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }
                ],
            }
        )
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": list(ARCHITECTURES),
        "syscalls": rules,
    }
