// SPDX-License-Identifier: GPL-2.0
// Vigil kernel sensor: process, file and network events to a ring buffer.
//
// CO-RE: compiled once against vmlinux.h, relocated by libbpf against the running kernel's BTF.
// The record layouts below are mirrored byte for byte by `src/ebpf/decode.rs`; keep them in sync
// (every field is naturally aligned, little-endian, no implicit padding).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

// ---- record kinds (mirror of decode.rs) ----
#define K_EXECVE 1
#define K_EXECVEAT 2
#define K_EXIT 3
#define K_FORK 4
#define K_CONNECT 5
#define K_ACCEPT 6
#define K_OPEN 7
#define K_OPENAT 8
#define K_OPENAT2 9
#define K_UNLINK 10
#define K_UNLINKAT 11
#define K_RENAME 12
#define K_RENAMEAT 13
#define K_RENAMEAT2 14
#define K_SETUID 15
#define K_SETGID 16
#define K_PTRACE 17
#define K_MEMFD 18
#define K_ACCEPT4 19
#define K_CREAT 20

#define PATH_MAX_LEN 256
#define CGROUP_NAME_LEN 96
#define ARGS_LEN 1024
#define WALK_BUF 320 /* 256 + one 64-byte component of slack */
#define WALK_DEPTH 24
#define NPREFIX 32
#define PREFIX_LEN 64

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define AF_UNIX 1
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define AF_INET 2
#define AF_INET6 10

struct hdr {
	u32 kind;
	u32 pid;       /* tgid */
	u32 tid;
	u32 ppid;
	u32 vpid;
	u32 uid;
	u32 gid;
	u32 loginuid;
	u64 ts;        /* bpf_ktime_get_boot_ns */
	u64 cgroup_id; /* kernfs id of the container-relevant cgroup */
	s64 res;
	u64 start_time; /* task start, ns since boot */
	char comm[16];
	char cgroup[CGROUP_NAME_LEN];
}; /* 176 bytes */

struct exec_rec {
	struct hdr h;
	u32 tty;
	u32 args_len;
	u32 exe_len;
	u32 cwd_len;
	char exe[WALK_BUF];  /* path components, leaf first, NUL separated */
	char cwd[WALK_BUF];  /* same */
	char args[ARGS_LEN]; /* argv, NUL separated */
};

struct exit_rec {
	struct hdr h;
	u32 code;
	u32 pad;
};

struct fork_rec {
	struct hdr h;
	u32 child_pid;
	u32 child_tid;
	u32 nr; /* syscall number that created it */
	u32 pad;
};

struct sock_rec {
	struct hdr h;
	u16 family;
	u16 proto; /* IPPROTO_* */
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	s32 fd;
	u32 pad;
	char unix_path[112];
};

struct file_rec {
	struct hdr h;
	u32 flags;
	u32 mode;
	s32 dfd;
	u32 aux; /* ptrace: target pid; setuid/setgid: the id; rename: newdfd */
	u64 aux2; /* ptrace: request */
	char path[PATH_MAX_LEN];
	char path2[PATH_MAX_LEN];
};

struct prefix {
	char p[PREFIX_LEN];
	u32 len;
	u32 mode; /* 1: any open, 2: writes only */
	u64 w0;   /* the prefix's first 8 bytes (little-endian word), zero beyond its length */
	u64 m0;   /* mask of the bytes of w0 that belong to the prefix */
	u64 w1;   /* its bytes 8..15, of which the first 7 count (a 16-byte read ends in a NUL) */
	u64 m1;   /* mask of the bytes of w1 that belong to the prefix */
};

// Set by user space before load.
const volatile u32 use_v1_memcg = 0;
const volatile u32 n_prefixes = 0;
const volatile u32 n_any = 0; /* prefixes[0..n_any) pass any open; the rest writes only */
const volatile u32 self_tgid = 0;
const volatile u64 wakeup_bytes = 0;
const volatile struct prefix prefixes[NPREFIX] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

// Cgroups user space already knows (it has resolved their container from a name it was sent):
// a header carries only the id of those, which spares reading the name (about 150 ns, a
// fifth of a connect's cost) in every event. A direct-mapped cache: slot `id % slots` holds
// the id, so the check is one array load (no hashing); two cgroups that share a slot just
// make the other's records carry its name. User space writes and clears the slots.
#define KNOWN_CGROUP_SLOTS 4096
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KNOWN_CGROUP_SLOTS);
	__type(key, u32);
	__type(value, u64);
} known_cgroups SEC(".maps");

// Directories that relative paths were used in, with their path as the task sees it, so that
// `cd /etc; cat shadow` passes the path filter as `/etc/shadow` does. A direct-mapped cache (a
// slot per directory name hash: one array load, no locks). An entry holds the dentry, its
// mount and the task's root it was walked for (a directory bind-mounted twice, or seen from
// another root, has another path), and is walked again after DIR_TTL_JIFFIES (about a second),
// so a renamed directory is seen by its new name within that time. Two directories that share
// a slot take turns.
struct dir_val {
	u64 dentry;
	u64 mnt;
	u64 root;
	u64 ts;          /* when it was walked (bpf_jiffies64) */
	u64 w[2];        /* the first 16 bytes of a file's path here: the directory's path and
			  * '/', as far as they go, zero after */
	u32 len;         /* length of the directory's path; 0 for the root */
	u32 could_match; /* some prefix can match a file here */
	char p[2 * PATH_MAX_LEN]; /* the path, right-aligned to end at p[PATH_MAX_LEN] */
};

#define DIR_TTL_JIFFIES 256 /* 1 s at HZ=250 */
#define DIR_SLOTS 4096
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DIR_SLOTS);
	__type(key, u32);
	__type(value, struct dir_val);
} dirs SEC(".maps");

// Where at_dir composes a path (the composed part may run past PATH_MAX_LEN, which the
// verifier must see to be in bounds) before it is copied into the record.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, char[2 * PATH_MAX_LEN]);
} path_scratch SEC(".maps");

// 0: ring buffer reservation failed (event lost), 1: a path the syscall succeeded with could not
// be read back at its exit (event lost)
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

static __always_inline void count(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void *reserve(u64 size)
{
	void *r = bpf_ringbuf_reserve(&events, size, 0);
	if (!r)
		count(0);
	return r;
}

// Set by user space when its reader found nothing to read and sleeps for long: the next record
// wakes it (and clears this), so an idle host costs no timer wakeups.
u32 reader_asleep = 0;

// Wake the reader only once enough data is waiting, or when it sleeps for long; while events
// flow it drains on a short timer, so latency stays bounded while a storm costs few wakeups.
static __always_inline void submit(void *r)
{
	if (*(volatile u32 *)&reader_asleep) {
		reader_asleep = 0;
		bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
		return;
	}
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(r, avail >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

// Gives back a reserved record that turned out not to be wanted. A discarded record keeps its
// room until the reader passes it, and the reader, seeing no records, may sleep: once a quarter
// of the ring waits (mostly discards, then), it is woken to pass them, so that discards never
// fill the ring and crowd out records that are wanted.
static __always_inline void discard(void *r)
{
	u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_discard(r, avail >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline bool is_self(void)
{
	return self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

// From kernel 6.2, bpf_rdonly_cast turns an address into a pointer of its BTF type that is read
// with direct loads (no helper call). Older kernels read the same fields with probe reads: libbpf
// resolves the missing kfunc to 0 and the verifier drops the branch that cannot be taken.
#define HAVE_RDONLY_CAST bpf_ksym_exists(bpf_rdonly_cast)
#define KCAST(p, type)                                                                       \
	(HAVE_RDONLY_CAST ? (type *)bpf_rdonly_cast((void *)(p), bpf_core_type_id_kernel(type)) \
			  : (type *)(p))
#define KREAD(p, field) (HAVE_RDONLY_CAST ? (p)->field : BPF_CORE_READ(p, field))

// The header is always about the current task. Fields are read with direct (BTF, CO-RE
// relocated) loads where the verifier allows it: much cheaper than bpf_probe_read calls.
static __always_inline struct cgroup *task_cgroup(struct task_struct *t)
{
	if (use_v1_memcg && bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct cgroup_subsys_state *css = t->cgroups->subsys[id & 15];
		return css ? css->cgroup : 0;
	}
	return t->cgroups->dfl_cgrp;
}

static __always_inline u32 task_vpid(struct task_struct *t)
{
	struct pid *p = t->group_leader->thread_pid;
	if (!p)
		return 0;
	u32 level = p->level;
	u64 at = (u64)p + bpf_core_field_offset(struct pid, numbers) +
		 (level & 31) * bpf_core_type_size(struct upid);
	struct upid *u = KCAST(at, struct upid);
	return KREAD(u, nr);
}

static __always_inline void fill_hdr(struct hdr *h, u32 kind, struct task_struct *t)
{
	u64 pt = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->pid = pt >> 32;
	h->tid = (u32)pt;
	h->ppid = t->real_parent->tgid;
	h->vpid = task_vpid(t);
	/* the ids as the initial user namespace has them, as bpf_get_current_uid_gid gives them */
	const struct cred *cred = t->cred;
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	if (bpf_core_field_exists(t->loginuid))
		h->loginuid = t->loginuid.val;
	else
		h->loginuid = (u32)-1;
	h->ts = bpf_ktime_get_boot_ns();
	h->res = 0;
	h->start_time = t->start_boottime;
	/* `t` is the current task: its name in two direct loads, not a helper call */
	__builtin_memcpy(h->comm, t->comm, sizeof(h->comm));
	struct cgroup *cg = task_cgroup(t);
	struct kernfs_node *kn = cg ? cg->kn : 0;
	u64 id = kn ? kn->id : 0;
	h->cgroup_id = id;
	h->cgroup[0] = 0;
	if (!kn)
		return;
	u32 slot = id & (KNOWN_CGROUP_SLOTS - 1);
	u64 *known = bpf_map_lookup_elem(&known_cgroups, &slot);
	if (known && *known == id && id != 0)
		return;
	const char *name = kn->name;
	if (!name || bpf_probe_read_kernel_str(h->cgroup, sizeof(h->cgroup), name) < 0)
		h->cgroup[0] = 0;
}

// `vm` as the `struct mount` that embeds it, readable by direct loads.
static __always_inline struct mount *real_mount(struct vfsmount *vm)
{
	return KCAST((void *)vm - bpf_core_field_offset(struct mount, mnt), struct mount);
}

// Writes the components of the path (`d` on `vm`) leaf first, NUL separated, stopping at the
// task's root (`rootd` on `rootm`). Pointers are walked with direct (BTF) loads where the
// kernel can cast (see KCAST); the names are copied with a helper.
static __always_inline u32 walk_path(char *buf, struct dentry *d, struct vfsmount *vm,
				     struct dentry *rootd, struct vfsmount *rootm)
{
	struct mount *m = real_mount(vm);
	u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	u32 pos = 0;

	for (int i = 0; i < WALK_DEPTH; i++) {
		if (d == rootd && (u64)m + mnt_off == (u64)rootm)
			break;
		struct dentry *parent = KREAD(d, d_parent);
		struct dentry *mroot = KREAD(m, mnt.mnt_root);
		if (d == parent && d != mroot) {
			/* a pseudo file (memfd, anonymous): its name is all there is */
			const unsigned char *pname = KREAD(d, d_name.name);
			if (pos < PATH_MAX_LEN) {
				long pn = bpf_probe_read_kernel_str(buf + (pos & (PATH_MAX_LEN - 1)), PREFIX_LEN, pname);
				if (pn > 0)
					pos += pn;
			}
			break;
		}
		if (d == mroot || d == parent) {
			struct mount *mp = KREAD(m, mnt_parent);
			if (mp == m || d != mroot)
				break;
			d = KREAD(m, mnt_mountpoint);
			m = mp;
			continue;
		}
		const unsigned char *name = KREAD(d, d_name.name);
		if (pos >= PATH_MAX_LEN)
			break;
		long n = bpf_probe_read_kernel_str(buf + (pos & (PATH_MAX_LEN - 1)), PREFIX_LEN, name);
		if (n <= 0)
			break;
		pos += n;
		d = parent;
	}
	return pos;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_self())
		return 0;
	/* An exec relative to a directory descriptor (execveat with a descriptor, fexecve) names
	 * its file /dev/fd/N[/path] (bprm->fdpath); an execveat given an absolute path or AT_FDCWD
	 * is reported as the execve it amounts to (the syscall number is not kept at this point). */
	u32 kind = K_EXECVE;
	if (bpf_core_field_exists(bprm->fdpath) && bprm->fdpath)
		kind = K_EXECVEAT;

	struct exec_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	fill_hdr(&r->h, kind, p);

	struct tty_struct *tty = p->signal->tty;
	r->tty = 0;
	if (tty) {
		u32 major = tty->driver->major;
		u32 minor = tty->driver->minor_start + tty->index;
		r->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
	}

	struct mm_struct *mm = p->mm;
	u64 as = mm ? mm->arg_start : 0;
	u64 ae = mm ? mm->arg_end : 0;
	u64 len = ae > as ? ae - as : 0;
	if (len > ARGS_LEN)
		len = ARGS_LEN;
	r->args_len = 0;
	if (len > 0 && bpf_probe_read_user(r->args, len, (void *)as) == 0)
		r->args_len = len;

	struct fs_struct *fs = p->fs;
	struct dentry *rootd = fs->root.dentry;
	struct vfsmount *rootm = fs->root.mnt;
	struct file *exe = bprm->file;
	struct dentry *exed = exe->f_path.dentry;
	r->exe_len = walk_path(r->exe, exed, exe->f_path.mnt, rootd, rootm);
	/* bit 31 of exe_len: the executable lies in an overlayfs upper layer (written in the
	 * container, not shipped in the image) */
	struct inode *ino = exed->d_inode;
	/* bit 30: the executable is writable by the user running it */
	if (ino) {
		u32 mode = ino->i_mode;
		u32 iuid = ino->i_uid.val;
		u32 igid = ino->i_gid.val;
		u32 uid = r->h.uid, gid = r->h.gid;
		if (uid == 0 || (iuid == uid && (mode & 0200)) || (igid == gid && (mode & 020)) || (mode & 02))
			r->exe_len |= 1u << 30;
	}
	if (ino && ino->i_sb->s_magic == OVERLAYFS_SUPER_MAGIC &&
	    bpf_core_type_exists(struct ovl_inode)) {
		/* overlayfs may be a module: its inode is read with probe reads */
		struct ovl_inode *oi = container_of(ino, struct ovl_inode, vfs_inode);
		if (BPF_CORE_READ(oi, __upperdentry))
			r->exe_len |= 1u << 31;
	}
	r->cwd_len = walk_path(r->cwd, fs->pwd.dentry, fs->pwd.mnt, rootd, rootm);
	submit(r);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	if (p->pid != p->tgid)
		return 0; /* a thread, not the process */
	if (is_self())
		return 0;
	struct exit_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	fill_hdr(&r->h, K_EXIT, p);
	r->code = p->exit_code;
	r->pad = 0;
	r->h.res = r->code;
	submit(r);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid != child->tgid)
		return 0; /* new thread */
	struct fork_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	struct task_struct *cur = bpf_get_current_task_btf();
	fill_hdr(&r->h, K_FORK, cur);
	r->child_pid = child->tgid;
	r->child_tid = child->pid;
	r->h.res = r->child_pid;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(cur);
	r->nr = regs ? regs->orig_ax : 0;
	r->pad = 0;
	submit(r);
	return 0;
}

// The file behind descriptor `fd` of the current task, readable by direct loads (0 if none).
static __always_inline struct file *fd_file(int fd)
{
	/* direct (BTF) loads throughout; the array's slot at the variable index is read through
	 * a cast of its address to a kernel type that begins with 8 bytes (`struct fd`) */
	struct task_struct *t = bpf_get_current_task_btf();
	struct files_struct *files = t->files;
	struct fdtable *fdt = files ? files->fdt : 0;
	if (!fdt)
		return 0;
	u32 max = fdt->max_fds;
	if (fd < 0 || (u32)fd >= max)
		return 0;
	struct file *f = 0;
	if (HAVE_RDONLY_CAST)
		f = (struct file *)*(u64 *)KCAST(&fdt->fd[fd], struct fd);
	else
		bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]);
	if (!f)
		return 0;
	return KCAST(f, struct file);
}

// ---- syscalls, traced at their exit ----

// Every syscall program runs at the syscall's exit only: its arguments are still in the user
// registers it was entered with (x86-64: di, si, dx, r10; the kernel writes only ax), and the
// strings they point to are still in the caller's memory, where the kernel has just read them.
// With no program at any syscall's entry, the kernel's syscall-entry tracepoint stays off for
// every syscall on the host, and a traced syscall runs one program, keeping no state between
// its entry and exit.
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

// Defines the program at syscall `name`'s exit tracepoint (`sys_exit_<name>`, the name user
// space selects it by); the block that follows is its body, with the user registers the
// syscall was entered with in `regs` and its result in `ret`.
#define SYSCALL_EXIT(name)                                                          \
	static __always_inline int name##_exit_body(struct pt_regs *regs, long ret); \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int sys_exit_##name(struct trace_event_raw_sys_exit *ctx)                   \
	{                                                                           \
		struct pt_regs *regs = syscall_regs();                              \
		if (!regs)                                                          \
			return 0;                                                   \
		return name##_exit_body(regs, ctx->ret);                            \
	}                                                                           \
	static __always_inline int name##_exit_body(struct pt_regs *regs, long ret)

// Does an open of `path` with `flags` pass the kernel filter?
static __always_inline bool wanted(const char *path, u32 flags, bool is_write)
{
	bool write = is_write || (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC));
	for (int i = 0; i < NPREFIX; i++) {
		if (i >= n_prefixes)
			break;
		u32 len = prefixes[i].len;
		if (prefixes[i].mode == 2 && !write)
			continue;
		bool ok = true;
		for (int j = 0; j < PREFIX_LEN; j++) {
			if (j >= len)
				break;
			if (path[j] != prefixes[i].p[j]) {
				ok = false;
				break;
			}
		}
		if (ok)
			return true;
	}
	return false;
}

static __always_inline bool history_name(const char *path, long n)
{
	/* n includes the NUL: the name ends with "_history" */
	if (n < 9 || n > PATH_MAX_LEN)
		return false;
	long s = n - 9;
	const char suffix[] = "_history";
	for (int j = 0; j < 8; j++) {
		if (path[(s + j) & (PATH_MAX_LEN - 1)] != suffix[j])
			return false;
	}
	return true;
}

// Can `path` (whose first 16 bytes, zero padded after its end, are `w0`, `w1`) match a prefix
// that applies to this open? Compares two words per prefix: a necessary condition for
// `wanted`, so that most opens are rejected after reading 16 bytes of their path.
static __always_inline bool maybe_wanted(u64 w0, u64 w1, bool write)
{
	u32 n = write ? n_prefixes : n_any;
	for (int i = 0; i < NPREFIX; i++) {
		if (i >= n)
			break;
		if ((w0 & prefixes[i].m0) == prefixes[i].w0 && (w1 & prefixes[i].m1) == prefixes[i].w1)
			return true;
	}
	return false;
}

// Fills the fields of a file record after its header.
static __always_inline void file_fields(struct file_rec *r, u32 kind, long ret, u32 flags, u32 mode,
					s32 dfd, u32 aux, u64 aux2)
{
	fill_hdr(&r->h, kind, bpf_get_current_task_btf());
	r->h.res = ret;
	r->flags = flags;
	r->mode = mode;
	r->dfd = dfd;
	r->aux = aux;
	r->aux2 = aux2;
}

// A path the syscall succeeded with but that cannot be read back is a lost event.
static __always_inline void unreadable(long ret)
{
	if (ret >= 0)
		count(1);
}

// Writes the path of directory `d` on `vm`, up to the task's root (`rootd` on `rootm`),
// right-aligned to end at buf[PATH_MAX_LEN]. Returns its length (0 for the root itself), or -1
// when it is no plain path: too long or deep, a pseudo file's, or outside the task's root.
static __always_inline int walk_dir(char *buf, struct dentry *d, struct vfsmount *vm,
				    struct dentry *rootd, struct vfsmount *rootm)
{
	struct mount *m = real_mount(vm);
	u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	u64 pos = PATH_MAX_LEN;

	for (int i = 0; i < WALK_DEPTH; i++) {
		if (d == rootd && (u64)m + mnt_off == (u64)rootm)
			return PATH_MAX_LEN - pos;
		struct dentry *parent = KREAD(d, d_parent);
		struct dentry *mroot = KREAD(m, mnt.mnt_root);
		if (d == mroot || d == parent) {
			struct mount *mp = KREAD(m, mnt_parent);
			if (mp == m || d != mroot)
				return -1;
			d = KREAD(m, mnt_mountpoint);
			m = mp;
			continue;
		}
		/* 64-bit throughout, so that the bounds the verifier learns from the checks hold
		 * for the registers the reads use */
		u64 n = KREAD(d, d_name.len);
		const unsigned char *name = KREAD(d, d_name.name);
		if (n == 0 || n + 1 > pos)
			return -1;
		pos -= n + 1;
		if (pos >= PATH_MAX_LEN || n >= PATH_MAX_LEN)
			return -1;
		if (bpf_probe_read_kernel(buf + pos + 1, n, name))
			return -1;
		buf[pos] = '/';
		d = parent;
	}
	return -1;
}

// The first 16 bytes of the path of a file in the directory whose path (`len` bytes,
// right-aligned as walk_dir leaves it) is in `v->p` go to `v->w`. Whether some prefix can match a file there goes to
// `v->could_match`: the words are compared as maybe_wanted compares an absolute path's, over
// the bytes they know (a necessary condition; the full path is checked with `wanted`).
static __always_inline void dir_head(struct dir_val *v, u32 len)
{
	u64 w[2] = {0, 0};
	u32 start = (PATH_MAX_LEN - len) & (PATH_MAX_LEN - 1);
	if (len == 0)
		start = PATH_MAX_LEN;
	bpf_probe_read_kernel(w, sizeof(w), &v->p[start & (2 * PATH_MAX_LEN - 1)]);
	u64 k0 = ~0ULL, k1 = ~0ULL; /* the bytes that are the directory's path and its '/' */
	if (len < 16) {
		u32 sh = (len & 7) * 8;
		u64 slash = (u64)'/' << sh;
		u64 below = sh ? (~0ULL >> (64 - sh)) : 0;
		u64 upto = below | (0xffULL << sh);
		if (len < 8) {
			w[0] = (w[0] & below) | slash;
			w[1] = 0;
			k0 = upto;
			k1 = 0;
		} else {
			w[1] = (w[1] & below) | slash;
			k1 = upto;
		}
	}
	v->w[0] = w[0];
	v->w[1] = w[1];
	v->could_match = 0;
	for (int i = 0; i < NPREFIX; i++) {
		if (i >= n_prefixes)
			break;
		if (((w[0] ^ prefixes[i].w0) & prefixes[i].m0 & k0) == 0 &&
		    ((w[1] ^ prefixes[i].w1) & prefixes[i].m1 & k1) == 0) {
			v->could_match = 1;
			break;
		}
	}
}

#define DIR_OF_FILE 0 /* the directory of the file open as `fd` */
#define DIR_AT_FD 1   /* the directory open as `fd` */
#define DIR_CWD 2     /* the working directory */

// What dir_slot leaves for a DIR_OF_FILE caller: the first 16 bytes of the file's path and
// the address of its name.
struct file_head {
	u64 head[2];
	u64 name;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct file_head);
} file_heads SEC(".maps");

// The `dirs` slot of a directory of the current task (`how`: DIR_OF_FILE, DIR_AT_FD or
// DIR_CWD), walked now if the slot holds another directory or an entry older than
// DIR_TTL_JIFFIES. Returns the slot when some prefix can match a path in that directory, -1
// otherwise (or when it has no plain path). For DIR_OF_FILE it also leaves the file's
// `file_head`. A global function: the verifier checks it once, on its own, rather than at
// each place it is called from, where its loops would multiply the states to explore.
__noinline int dir_slot(int how, int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fs_struct *fs = t->fs;
	struct dentry *d;
	struct vfsmount *vm;
	if (how == DIR_CWD) {
		d = fs->pwd.dentry;
		vm = fs->pwd.mnt;
	} else {
		struct file *f = fd_file(fd);
		if (!f)
			return -1;
		d = KREAD(f, f_path.dentry);
		vm = KREAD(f, f_path.mnt);
	}
	if (!d || !vm)
		return -1;
	d = KCAST(d, struct dentry);
	struct mount *m = real_mount(vm);
	struct dentry *dir = d;
	if (how == DIR_OF_FILE) {
		/* a file that is itself a mount's root (a bind-mounted file such as a container's
		 * /etc/resolv.conf) is named by its mountpoint */
		for (int i = 0; i < 4; i++) {
			if (d != KREAD(m, mnt.mnt_root))
				break;
			struct mount *mp = KREAD(m, mnt_parent);
			if (mp == m)
				break;
			d = KREAD(m, mnt_mountpoint);
			m = mp;
		}
		dir = KREAD(d, d_parent);
		if (!dir || dir == d)
			return -1;
	}
	struct vfsmount *dm = (struct vfsmount *)((u64)m + bpf_core_field_offset(struct mount, mnt));
	struct dentry *rootd = fs->root.dentry;
	/* the slot from the directory's name hash, which the kernel salts with its parent */
	u32 slot = ((u32)KREAD(dir, d_name.hash) * 0x9E3779B1u) >> 20 & (DIR_SLOTS - 1);
	struct dir_val *v = bpf_map_lookup_elem(&dirs, &slot);
	if (!v)
		return -1;
	u64 now = bpf_jiffies64();
	if (v->dentry != (u64)dir || v->mnt != (u64)dm || v->root != (u64)rootd ||
	    now - v->ts > DIR_TTL_JIFFIES) {
		/* the key is cleared while the path is rewritten, and set once it is whole */
		v->dentry = 0;
		int len = walk_dir(v->p, dir, dm, rootd, fs->root.mnt);
		if (len < 0)
			return -1;
		v->len = len;
		dir_head(v, len);
		v->ts = now;
		v->mnt = (u64)dm;
		v->root = (u64)rootd;
		v->dentry = (u64)dir;
	}
	if (!v->could_match)
		return -1;
	if (how == DIR_OF_FILE) {
		u32 zero = 0;
		struct file_head *fh = bpf_map_lookup_elem(&file_heads, &zero);
		if (!fh)
			return -1;
		const unsigned char *name = KREAD(d, d_name.name);
		fh->name = (u64)name;
		fh->head[0] = v->w[0];
		fh->head[1] = v->w[1];
		u32 len = v->len;
		if (len < 15) {
			/* the name's first bytes follow the directory's path and its '/' */
			u64 nw[2] = {0, 0};
			bpf_probe_read_kernel_str(nw, sizeof(nw), name);
			u32 sh = (len + 1) * 8;
			if (sh < 64) {
				fh->head[0] |= nw[0] << sh;
				fh->head[1] |= (nw[0] >> (64 - sh)) | (nw[1] << sh);
			} else {
				fh->head[1] |= nw[0] << ((sh - 64) & 63);
			}
		}
	}
	return slot;
}

// Rewrites `buf` (PATH_MAX_LEN bytes), which holds the relative path `upath` (read from the
// caller), as the path of directory `dfd` (AT_FDCWD: the working directory), '/', and `upath`,
// so that the filter sees the path the syscall acted on. Returns its length with the NUL; 0,
// leaving `buf` as it was, when no prefix can match a path in that directory or it has no
// plain path; -1 when `upath` could not be read again.
static __always_inline long at_dir(char *buf, int dfd, const char *upath)
{
	u32 slot = dir_slot(dfd == -100 ? DIR_CWD : DIR_AT_FD, dfd);
	if ((int)slot < 0)
		return 0;
	struct dir_val *v = bpf_map_lookup_elem(&dirs, &slot);
	u32 zero = 0;
	char *sc = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!v || !sc)
		return 0;
	u32 len = v->len & (PATH_MAX_LEN - 1);
	u32 room = (PATH_MAX_LEN - 1 - len) & (PATH_MAX_LEN - 1);
	if (room == 0)
		return 0;
	if (len)
		bpf_probe_read_kernel(sc, len, &v->p[(PATH_MAX_LEN - len) & (PATH_MAX_LEN - 1)]);
	sc[len] = '/';
	long m = bpf_probe_read_user_str(sc + len + 1, room, upath);
	if (m <= 0)
		return -1;
	bpf_probe_read_kernel(buf, PATH_MAX_LEN, sc);
	return len + 1 + m;
}

// A relative open that succeeded: the file it opened (descriptor `ret`) names its directory
// and itself, so its path is the directory's path (from `dirs`), '/', and its name. The filter
// then sees the path an absolute open of the same file would give. The first 16 bytes must
// pass maybe_wanted, as an absolute path's must, before a record is reserved.
static __always_inline int open_rel_exit(long ret, u32 kind, int dfd, u32 flags, u32 mode)
{
	u32 slot = dir_slot(DIR_OF_FILE, ret);
	if ((int)slot < 0)
		return 0;
	u32 zero = 0;
	struct file_head *fh = bpf_map_lookup_elem(&file_heads, &zero);
	if (!fh ||
	    !maybe_wanted(fh->head[0], fh->head[1], flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)))
		return 0;
	struct dir_val *v = bpf_map_lookup_elem(&dirs, &slot);
	if (!v)
		return 0;
	struct file_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	u32 len = v->len & (PATH_MAX_LEN - 1);
	if (len)
		bpf_probe_read_kernel(r->path, len, &v->p[(PATH_MAX_LEN - len) & (PATH_MAX_LEN - 1)]);
	r->path[len] = '/';
	u32 room = (PATH_MAX_LEN - 1 - len) & (PATH_MAX_LEN - 1);
	if (room == 0 ||
	    bpf_probe_read_kernel_str(r->path + len + 1, room, (const void *)fh->name) <= 0 ||
	    !wanted(r->path, flags, false)) {
		discard(r);
		return 0;
	}
	file_fields(r, kind, ret, flags, mode, dfd, 0, mode);
	r->path2[0] = 0;
	submit(r);
	return 0;
}

static __always_inline int open_exit(long ret, u32 kind, int dfd, const char *upath, u32 flags, u32 mode)
{
	bool write = flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC);
	u64 head[2] = {0, 0};
	long hn = bpf_probe_read_user_str(head, sizeof(head), upath);
	if (hn <= 0) {
		if (upath)
			unreadable(ret);
		return 0;
	}
	if ((u8)head[0] != '/') {
		if (ret < 0 || is_self())
			return 0;
		return open_rel_exit(ret, kind, dfd, flags, mode);
	}
	if (!maybe_wanted(head[0], head[1], write) || is_self())
		return 0;
	struct file_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	long n = bpf_probe_read_user_str(r->path, sizeof(r->path), upath);
	if (n <= 0 || !wanted(r->path, flags, false)) {
		discard(r);
		return 0;
	}
	file_fields(r, kind, ret, flags, mode, dfd, 0, mode);
	r->path2[0] = 0;
	submit(r);
	return 0;
}

SYSCALL_EXIT(open)
{
	return open_exit(ret, K_OPEN, -100, (const char *)regs->di, regs->si, regs->dx);
}

SYSCALL_EXIT(creat)
{
	return open_exit(ret, K_CREAT, -100, (const char *)regs->di, O_CREAT | O_WRONLY | O_TRUNC, regs->si);
}

SYSCALL_EXIT(openat)
{
	return open_exit(ret, K_OPENAT, regs->di, (const char *)regs->si, regs->dx, regs->r10);
}

SYSCALL_EXIT(openat2)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)regs->dx);
	return open_exit(ret, K_OPENAT2, regs->di, (const char *)regs->si, how.flags, how.mode);
}

// unlink and rename: reported when a path is watched for writes, or names a shell history.
static __always_inline int unlink_exit(long ret, u32 kind, int dfd, const char *upath, u32 flags)
{
	if (is_self())
		return 0;
	struct file_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	long n = bpf_probe_read_user_str(r->path, sizeof(r->path), upath);
	if (n > 0 && r->path[0] != '/' && !history_name(r->path, n)) {
		long at = at_dir(r->path, dfd, upath);
		if (at)
			n = at;
	}
	if (n <= 0 || (!wanted(r->path, 0, true) && !history_name(r->path, n))) {
		if (n <= 0)
			unreadable(ret);
		discard(r);
		return 0;
	}
	file_fields(r, kind, ret, flags, 0, dfd, 0, 0);
	r->path2[0] = 0;
	submit(r);
	return 0;
}

SYSCALL_EXIT(unlink)
{
	return unlink_exit(ret, K_UNLINK, -100, (const char *)regs->di, 0);
}

SYSCALL_EXIT(unlinkat)
{
	return unlink_exit(ret, K_UNLINKAT, regs->di, (const char *)regs->si, regs->dx);
}

// The new path is relative to `newdfd`, which the record carries in `aux`.
static __always_inline int rename_exit(long ret, u32 kind, int olddfd, const char *oldp, int newdfd,
				       const char *newp, u32 flags)
{
	if (is_self())
		return 0;
	struct file_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	long n = bpf_probe_read_user_str(r->path, sizeof(r->path), oldp);
	long m = bpf_probe_read_user_str(r->path2, sizeof(r->path2), newp);
	if (n > 0 && r->path[0] != '/' && !history_name(r->path, n)) {
		long at = at_dir(r->path, olddfd, oldp);
		if (at)
			n = at;
	}
	if (m > 0 && r->path2[0] != '/') {
		long at = at_dir(r->path2, newdfd, newp);
		if (at)
			m = at;
	}
	if (n <= 0 || m <= 0 ||
	    (!wanted(r->path, 0, true) && !wanted(r->path2, 0, true) && !history_name(r->path, n))) {
		if (n <= 0 || m <= 0)
			unreadable(ret);
		discard(r);
		return 0;
	}
	file_fields(r, kind, ret, flags, 0, olddfd, newdfd, 0);
	submit(r);
	return 0;
}

SYSCALL_EXIT(rename)
{
	return rename_exit(ret, K_RENAME, -100, (const char *)regs->di, -100, (const char *)regs->si, 0);
}

SYSCALL_EXIT(renameat)
{
	return rename_exit(ret, K_RENAMEAT, regs->di, (const char *)regs->si, regs->dx,
			   (const char *)regs->r10, 0);
}

SYSCALL_EXIT(renameat2)
{
	return rename_exit(ret, K_RENAMEAT2, regs->di, (const char *)regs->si, regs->dx,
			   (const char *)regs->r10, regs->r8);
}

// setuid/setgid/ptrace/memfd_create: the arguments and the result.
static __always_inline int simple_exit(long ret, u32 kind, u32 flags, u32 mode, u32 aux, u64 aux2,
				       const char *name)
{
	if (is_self())
		return 0;
	struct file_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	file_fields(r, kind, ret, flags, mode, -100, aux, aux2);
	r->path[0] = 0;
	if (name && bpf_probe_read_user_str(r->path, sizeof(r->path), name) < 0)
		r->path[0] = 0;
	r->path2[0] = 0;
	submit(r);
	return 0;
}

SYSCALL_EXIT(setuid)
{
	return simple_exit(ret, K_SETUID, 0, 0, regs->di, 0, 0);
}

SYSCALL_EXIT(setgid)
{
	return simple_exit(ret, K_SETGID, 0, 0, regs->di, 0, 0);
}

SYSCALL_EXIT(ptrace)
{
	u64 req = regs->di;
	/* only requests that take control or write another process */
	if (!(req == 0 || req == 4 || req == 5 || req == 6 || req == 16 || req == 0x4206))
		return 0;
	return simple_exit(ret, K_PTRACE, 0, req, regs->si, req, 0);
}

SYSCALL_EXIT(memfd_create)
{
	return simple_exit(ret, K_MEMFD, regs->si, 0, 0, 0, (const char *)regs->di);
}

// ---- sockets ----

static __always_inline struct sock *fd_sock(int fd)
{
	struct file *fc = fd_file(fd);
	if (!fc)
		return 0;
	struct socket *so = KREAD(fc, private_data);
	if (!so)
		return 0;
	struct socket *sc = KCAST(so, struct socket);
	return KREAD(sc, sk);
}

// Fills local/remote ends from the socket; `remote_from_sock` for accept.
static __always_inline void sock_ends(struct sock_rec *r, struct sock *sk, bool remote_from_sock)
{
	r->proto = KREAD(sk, sk_protocol);
	r->lport = KREAD(sk, __sk_common.skc_num);
	if (remote_from_sock)
		r->rport = bpf_ntohs(KREAD(sk, __sk_common.skc_dport));
	if (!HAVE_RDONLY_CAST) {
		if (r->family == AF_INET) {
			bpf_core_read(r->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
			if (remote_from_sock)
				bpf_core_read(r->raddr, 4, &sk->__sk_common.skc_daddr);
		} else {
			bpf_core_read(r->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
			if (remote_from_sock)
				bpf_core_read(r->raddr, 16, &sk->__sk_common.skc_v6_daddr);
		}
		return;
	}
	if (r->family == AF_INET) {
		*(u32 *)r->laddr = sk->__sk_common.skc_rcv_saddr;
		if (remote_from_sock)
			*(u32 *)r->raddr = sk->__sk_common.skc_daddr;
	} else {
		u32 *l = (u32 *)r->laddr;
		for (int i = 0; i < 4; i++)
			l[i] = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[i];
		if (remote_from_sock) {
			u32 *d = (u32 *)r->raddr;
			for (int i = 0; i < 4; i++)
				d[i] = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[i];
		}
	}
}

// connect is traced at its exit only: the arguments are still in the user registers the
// syscall was entered with (x86-64: di, si, dx; the kernel writes only ax), and the address
// is still in the caller's memory. Without an entry program, a connect runs one program, not
// two, and keeps no per-task state in between.
SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	if (is_self())
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return 0;
	s32 fd = regs->di;
	u64 uaddr = regs->si;
	u32 addrlen = regs->dx;
	/* An IP socket that has its peer (connected, or on its way) names both ends itself:
	 * reading them there spares copying the address from the caller's memory (a third of
	 * this program's cost). Anything else (unix sockets, a failed connect that left no peer)
	 * reads the caller's sockaddr. */
	struct sock *sk = fd_sock(fd);
	u16 family = sk ? KREAD(sk, __sk_common.skc_family) : 0;
	bool from_sock = (family == AF_INET || family == AF_INET6) && sk &&
			 KREAD(sk, __sk_common.skc_dport) != 0;
	/* family, port and address in one read: sockaddr_in6 is 28 bytes */
	u64 sa[4] = {0, 0, 0, 0};
	if (!from_sock) {
		u32 len = addrlen;
		if (len > 28)
			len = 28;
		/* keep the clamped value in a register of its own, bounded for the verifier */
		barrier_var(len);
		if (len < 2 || bpf_probe_read_user(sa, len & 31, (void *)uaddr) != 0)
			return 0;
		family = (u16)sa[0];
		if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
			return 0;
	}
	struct sock_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	__builtin_memset(&r->family, 0, sizeof(*r) - sizeof(r->h));
	fill_hdr(&r->h, K_CONNECT, t);
	r->h.res = ctx->ret;
	r->family = family;
	r->fd = fd;
	if (from_sock) {
		sock_ends(r, sk, true);
	} else if (family == AF_UNIX) {
		bpf_probe_read_user_str(r->unix_path, sizeof(r->unix_path), (void *)uaddr + 2);
	} else {
		r->rport = bpf_ntohs((u16)(sa[0] >> 16));
		if (family == AF_INET)
			__builtin_memcpy(r->raddr, (u8 *)sa + 4, 4);
		else
			__builtin_memcpy(r->raddr, (u8 *)sa + 8, 16);
		if (sk)
			sock_ends(r, sk, false);
	}
	submit(r);
	return 0;
}

static __always_inline int accept_exit(long ret, u32 kind)
{
	if (is_self() || ret < 0)
		return 0;
	struct sock *sk = fd_sock(ret);
	if (!sk)
		return 0;
	u16 family = KREAD(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct sock_rec *r = reserve(sizeof(*r));
	if (!r)
		return 0;
	__builtin_memset(&r->family, 0, sizeof(*r) - sizeof(r->h));
	fill_hdr(&r->h, kind, bpf_get_current_task_btf());
	r->h.res = ret;
	r->family = family;
	r->fd = ret;
	sock_ends(r, sk, true);
	submit(r);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret, K_ACCEPT);
}
SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret, K_ACCEPT4);
}
