//! Parsing of `/proc/self/cgroup` and `/proc/self/mountinfo`: which cgroup hierarchies are
//! mounted where, and where this process sits in each.
//!
//! Pure text parsing, no I/O: the callers read the files, so the parsers are tested on samples
//! from real machines (cgroup v1 with per-controller paths, hybrid, v2 with a namespace root).

use std::path::{Path, PathBuf};

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Hierarchy id (0 for the v2 unified hierarchy).
    pub hierarchy: u32,
    /// Controllers bound to the hierarchy (`cpu`, `cpuacct`, `name=systemd`); empty on v2.
    pub controllers: Vec<String>,
    /// The process's cgroup, relative to the hierarchy's root (starts with `/`).
    pub path: String,
}

/// One cgroup filesystem mount from `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows as its root (`/` unless bind-mounted or
    /// namespaced).
    pub root: String,
    /// `true` for `cgroup2`, `false` for a v1 `cgroup` mount.
    pub v2: bool,
    /// Controllers of a v1 mount (from its super options); empty for v2.
    pub controllers: Vec<String>,
    /// Whether the mount is read-only.
    pub read_only: bool,
}

/// Parses `/proc/<pid>/cgroup`. Malformed lines are skipped.
pub fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// Parses the cgroup and cgroup2 mounts of `/proc/<pid>/mountinfo`.
pub fn parse_cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let root = unescape(left.get(3)?);
            let mount_point = PathBuf::from(unescape(left.get(4)?));
            let mount_options = left.get(5).copied().unwrap_or("");
            let read_only = mount_options.split(',').any(|o| o == "ro")
                || super_options.split(',').any(|o| o == "ro");
            let controllers = if v2 {
                Vec::new()
            } else {
                super_options
                    .split(',')
                    .filter(|o| is_v1_controller(o))
                    .map(str::to_string)
                    .collect()
            };
            Some(CgroupMount {
                mount_point,
                root,
                v2,
                controllers,
                read_only,
            })
        })
        .collect()
}

fn is_v1_controller(option: &str) -> bool {
    matches!(
        option,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "pids"
            | "blkio"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "perf_event"
            | "hugetlb"
            | "rdma"
            | "misc"
    ) || option.starts_with("name=")
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The folder of this process's own cgroup in a mounted hierarchy: the mount point joined with the
/// process's path relative to the mount's root. `None` when the process's cgroup is not visible
/// through this mount (it sits outside the mount's root).
pub fn own_dir(mount: &CgroupMount, own_path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let rest = if root.is_empty() {
        own_path
    } else {
        let rest = own_path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let rest = rest.trim_start_matches('/');
    if rest.split('/').any(|c| c == "..") {
        return None;
    }
    Some(if rest.is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(rest)
    })
}

/// Whether `path` lies inside `dir` (component-wise, after both are made lexically clean).
pub fn is_within(dir: &Path, path: &Path) -> bool {
    use std::path::Component;
    let clean = |p: &Path| -> Option<Vec<std::ffi::OsString>> {
        let mut out = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => out.push(n.to_os_string()),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        Some(out)
    };
    match (clean(dir), clean(path)) {
        (Some(d), Some(p)) => p.starts_with(&d),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // This machine's layout: v1 controllers, memory nested under a per-session cgroup while cpu
    // is at the root, and an empty unified hierarchy (hybrid).
    const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/0556\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn memberships_keep_per_hierarchy_paths() {
        let m = parse_memberships(HYBRID_CGROUP);
        assert_eq!(m.len(), 6);
        let memory = m.iter().find(|m| m.controllers == ["memory"]).unwrap();
        assert_eq!(memory.path, "/process_api/0556");
        let unified = m.iter().find(|m| m.hierarchy == 0).unwrap();
        assert!(unified.controllers.is_empty());
        assert_eq!(unified.path, "/");
        let systemd = m.iter().find(|m| m.hierarchy == 9).unwrap();
        assert_eq!(systemd.controllers, ["name=systemd"]);
    }

    #[test]
    fn mounts_are_parsed_with_their_controllers() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO);
        assert_eq!(mounts.len(), 6, "the tmpfs is not a cgroup mount");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(mounts[0].controllers, ["cpu"]);
        assert!(!mounts[0].v2 && !mounts[0].read_only);
        assert!(mounts[5].v2);
        let co_mounted = parse_cgroup_mounts(
            "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(co_mounted[0].controllers, ["cpu", "cpuacct"]);
        assert!(co_mounted[0].read_only, "ro mount option");
    }

    #[test]
    fn own_dir_joins_the_path_below_the_mount_root() {
        let mounts = parse_cgroup_mounts(HYBRID_MOUNTINFO);
        let memory = mounts.iter().find(|m| m.controllers == ["memory"]).unwrap();
        assert_eq!(
            own_dir(memory, "/process_api/0556"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/0556"))
        );
        assert_eq!(
            own_dir(memory, "/"),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        // A container without a cgroup namespace: the mount shows the pod's cgroup as its root.
        let pod = CgroupMount {
            mount_point: "/sys/fs/cgroup".into(),
            root: "/kubepods/pod1/c1".into(),
            v2: true,
            controllers: vec![],
            read_only: false,
        };
        assert_eq!(
            own_dir(&pod, "/kubepods/pod1/c1"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            own_dir(&pod, "/kubepods/pod1/c1/sub"),
            Some(PathBuf::from("/sys/fs/cgroup/sub"))
        );
        assert_eq!(
            own_dir(&pod, "/kubepods/pod1/c10"),
            None,
            "a sibling is not inside"
        );
        assert_eq!(own_dir(&pod, "/other"), None);
        assert_eq!(own_dir(memory, "/a/../../etc"), None);
    }

    #[test]
    fn octal_escapes_in_mount_points_are_decoded() {
        let mounts = parse_cgroup_mounts(
            "41 31 0:38 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/my cgroup"));
    }

    #[test]
    fn within_is_component_wise() {
        assert!(is_within(Path::new("/a/b"), Path::new("/a/b/c")));
        assert!(is_within(Path::new("/a/b"), Path::new("/a/b")));
        assert!(!is_within(Path::new("/a/b"), Path::new("/a/bc")));
        assert!(!is_within(Path::new("/a/b"), Path::new("/a/b/../c")));
    }
}
