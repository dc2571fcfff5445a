//! cgroup v1 and v2 readers over an injectable root. (Being written.)
