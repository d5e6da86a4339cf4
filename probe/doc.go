// Package probe finds out which isolation levels a Linux host can offer
// osvm's components, and why the others are unavailable.
//
// Probe reads the host once and returns a Report: the Facts it found (KVM,
// Landlock, seccomp, cgroups, user namespaces, systemd, AMD SEV, Intel TDX,
// huge pages) and, for each Level from none to tee, whether the host can
// run it. An unavailable level has reasons that name what is missing and
// what an administrator can do, such as
//
//	needs read-write access to /dev/kvm (open /dev/kvm: permission denied): add the user that runs osvmd to group kvm, or run osvmd as root
//
// The package has three layers, so that all logic is tested on recorded
// hosts (testdata/hosts) without their hardware:
//
//   - gather (Linux only) reads files, executes CPUID, issues system calls
//     and ioctls and runs systemctl --version, and keeps the raw results.
//   - parse turns those results into Facts without touching the host.
//   - Levels decides each level from Facts alone.
//
// # Levels
//
//   - none: always available.
//   - process: seccomp filters with the actions allow, errno and
//     kill_process, and Landlock ABI 4 or newer (TCP port rules).
//   - container: user namespaces, cgroups with the cpu, memory and pids
//     controllers (v1, hybrid or unified), and systemd 252 or newer.
//   - microvm: never yet, because osvm does not implement it. The
//     reasons also list what KVM lacks for it.
//   - unikernel: a KVM that osvm's monitor can use: /dev/kvm opens
//     read-write, API version 12, KVM_CAP_USER_MEMORY,
//     KVM_CAP_IMMEDIATE_EXIT and an in-kernel irqchip (KVM_CAP_IRQCHIP).
//     On PVM, where guest ring 0 is emulated, the level is available with
//     a note that it runs at reduced speed.
//   - tee: that KVM, plus AMD SEV-SNP (the CPU's CPUID 0x8000001F SNP bit,
//     kvm_amd's sev_snp parameter, /dev/sev) or Intel TDX (kvm_intel's tdx
//     parameter). Where KVM has KVM_CAP_VM_TYPES (Linux 6.8), it must
//     list the SNP or TDX VM type.
//
// # Privileges
//
// Run Probe as root to get the results that osvmd, which runs as root,
// gets. Without root the report is still complete, but /dev/kvm is usually
// not readable and writable, so the KVM levels show that as their reason.
// Every other fact reads the same for any user. Facts.EUID records who
// probed.
//
// Probe changes nothing on the host. It reads /proc and /sys, opens
// /dev/kvm read-write only for KVM_GET_API_VERSION and
// KVM_CHECK_EXTENSION, checks /dev/sev with access(2) without opening
// it, calls landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION
// (which creates no ruleset) and prctl(PR_GET_SECCOMP), and runs
// systemctl --version, falling back to the systemd binary.
//
// # Kernel versions
//
// The probe runs on any Linux kernel and reports what is missing. The
// versions that matter: seccomp's actions_avail appeared in Linux 4.14,
// KVM_CAP_IMMEDIATE_EXIT in 4.11, Landlock in 5.13 and its ABI 4 in 6.7,
// KVM_CAP_VM_TYPES in 6.8, kvm_amd's sev_snp parameter in 6.11 and
// kvm_intel's tdx parameter in 6.16. The cgroup layout comes from
// github.com/containerd/cgroups/v3, which checks the file system types at
// /sys/fs/cgroup and /sys/fs/cgroup/unified once per process and keeps the
// result.
//
// # Limitations
//
// CPUID runs only on amd64. Elsewhere the CPU facts come from
// /proc/cpuinfo alone and tee is unavailable.
//
// PVM is recognized by the kvm_pvm entry in /sys/module, or inferred on
// x86 when /dev/kvm exists although the CPU reports neither VMX nor SVM.
// The probe takes VMX and SVM from the vmx and svm flags of /proc/cpuinfo.
// Linux 5.6 and newer clear vmx when the firmware disabled VT-x, but svm
// may remain when the firmware disabled AMD-V, and then kvm_amd fails to
// load.
//
// The checks for SEV-SNP and TDX stop at what the kernel reports: they do
// not start a confidential guest, so firmware that fails at launch time
// still shows tee as available. /dev/sev is checked with access(2), which
// a security module may treat differently from open(2).
//
// The container level's check does not find out whether systemd is the
// running service manager (Facts.Systemd.Running reports it), and the
// process level does not check systemd's version, which osvmd itself
// needs.
//
// The package never logs. Problems met while probing are facts, of type
// *Problem, so Probe always returns a report.
package probe
