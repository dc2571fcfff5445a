//! The harness itself, against a real containerd: if these fail, no end-to-end result means
//! anything. Needs root and `scripts/install-deps.sh`; nothing here is skipped.

mod harness;

use std::time::{Duration, Instant};

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::GetImageRequest;
use containerd_client::tonic::Request;
use containerd_client::with_namespace;
use harness::{host, Containerd, BUSYBOX_IMAGE, K8S_NAMESPACE, PLAIN_NAMESPACE};
use k8s_cri::v1::ContainerState;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn cri_container_exit_code_is_visible_in_status() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;

    let t = Instant::now();
    let pod = cri.run_pod("exiter", "default").await;
    let run_pod = t.elapsed();
    let t = Instant::now();
    let id = pod
        .container("main")
        .command(["sh", "-c", "exit 3"])
        .start()
        .await;
    let create_start = t.elapsed();
    let status = cri.wait_exited(&id, EXIT_TIMEOUT).await;
    eprintln!(
        "timings: RunPodSandbox {run_pod:?}, CreateContainer+StartContainer {create_start:?}, \
         start->exit {} ms",
        (status.finished_at - status.started_at) / 1_000_000
    );

    assert_eq!(status.exit_code, 3, "{status:?}");
    assert_eq!(status.reason, "Error", "{status:?}");
    let meta = status.metadata.as_ref().expect("metadata");
    assert_eq!((meta.name.as_str(), meta.attempt), ("main", 0));
    assert_eq!(
        status
            .labels
            .get("io.kubernetes.pod.name")
            .map(String::as_str),
        Some("exiter")
    );
    assert_eq!(status.labels.get("io.kubernetes.pod.uid"), Some(&pod.uid));
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_under_20mb_limit_is_reported_by_cri() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("hog", "default").await;

    let id = pod
        .container("hog")
        .command(["sh", "-c", "head -c 100000000 /dev/zero | tail"])
        .memory_limit(20 << 20)
        .start()
        .await;
    let status = cri.wait_exited(&id, EXIT_TIMEOUT).await;
    eprintln!(
        "timings: start->OOM exit {} ms",
        (status.finished_at - status.started_at) / 1_000_000
    );

    assert_eq!(status.reason, "OOMKilled", "{status:?}");
    assert_eq!(status.exit_code, 137, "{status:?}");
    let spec = cd.spec(K8S_NAMESPACE, &id).await;
    assert_eq!(
        spec["linux"]["resources"]["memory"]["limit"],
        20 << 20,
        "memory limit in the OCI spec"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_to_self_kills_only_in_shared_process_namespace() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    // Own pid namespace: sh is pid 1 there and the kernel drops the SIGSEGV it sends itself.
    let alone = cri.run_pod("alone", "default").await;
    let id = alone
        .container("c")
        .command(["sh", "-c", "kill -SEGV $$"])
        .start()
        .await;
    let status = cri.wait_exited(&id, EXIT_TIMEOUT).await;
    assert_eq!(
        status.exit_code, 0,
        "pid 1 ignores its own SIGSEGV: {status:?}"
    );
    // Shared: the pause process is pid 1, sh is not, so the signal kills it.
    let shared = cri
        .pod("shared", "default")
        .share_process_namespace()
        .run()
        .await;
    let id = shared
        .container("c")
        .command(["sh", "-c", "kill -SEGV $$"])
        .start()
        .await;
    let status = cri.wait_exited(&id, EXIT_TIMEOUT).await;
    assert_eq!(status.exit_code, 139, "128 + SIGSEGV: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_container_runs_in_own_namespace() {
    let cd = Containerd::start().await;
    let plain = cd
        .plain("plain-exit")
        .command(["sh", "-c", "echo hello from plain; exit 3"])
        .label("app", "smoke")
        .run()
        .await;
    let task = plain.wait_exited(EXIT_TIMEOUT).await;
    assert_eq!(task.exit_status, 3, "{task:?}");
    assert!(
        plain.output().contains("hello from plain"),
        "output: {:?}",
        plain.output()
    );

    let record = cd.container(PLAIN_NAMESPACE, "plain-exit").await;
    assert_eq!(record.image, BUSYBOX_IMAGE);
    assert_eq!(record.labels.get("app").map(String::as_str), Some("smoke"));
    assert!(
        !record.labels.contains_key("io.cri-containerd.kind"),
        "plain containers have no CRI labels"
    );
    let spec = cd.spec(PLAIN_NAMESPACE, "plain-exit").await;
    assert_eq!(
        spec["linux"]["cgroupsPath"],
        format!("{}/plain-plain-exit", cd.cgroup_parent())
    );

    let k8s = cd.try_ctr(K8S_NAMESPACE, &["containers", "info", "plain-exit"]);
    assert!(
        !k8s.status.success(),
        "plain container must not be visible in k8s.io"
    );
    // The shim's runc state lives in the instance's runc root, not /run/containerd/runc.
    assert!(cd
        .runc_root()
        .join(PLAIN_NAMESPACE)
        .join("plain-exit")
        .exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_image_digest_matches_what_containerd_reports() {
    let cd = Containerd::start().await;
    let expected = &cd.images().busybox;
    let mut images = ImagesClient::new(cd.channel().await);
    for ns in [K8S_NAMESPACE, PLAIN_NAMESPACE] {
        let req = with_namespace!(
            GetImageRequest {
                name: BUSYBOX_IMAGE.to_string()
            },
            ns
        );
        let image = images
            .get(req)
            .await
            .unwrap()
            .into_inner()
            .image
            .expect("image");
        let target = image.target.expect("target");
        assert_eq!(
            target.digest, expected.manifest_digest,
            "manifest digest in {ns}"
        );
    }
    // CRI reports the config digest as the image id.
    let cri = cd.cri().await;
    let pod = cri.run_pod("digest", "default").await;
    let id = pod.container("c").command(["true"]).start().await;
    let status = cri.wait_exited(&id, EXIT_TIMEOUT).await;
    assert_eq!(status.image_ref, expected.config_digest, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_container_carries_kubelet_identity() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let pod = cri.pod("ident", "team-a").attempt(1).run().await;
    let id = pod
        .container("worker")
        .attempt(2)
        .env("MODE", "smoke")
        .command(["sleep", "60"])
        .start()
        .await;
    cri.wait_running(&id, EXIT_TIMEOUT).await;

    let record = cd.container(K8S_NAMESPACE, &id).await;
    for (k, v) in [
        ("io.cri-containerd.kind", "container"),
        ("io.kubernetes.pod.name", "ident"),
        ("io.kubernetes.pod.namespace", "team-a"),
        ("io.kubernetes.pod.uid", pod.uid.as_str()),
        ("io.kubernetes.container.name", "worker"),
    ] {
        assert_eq!(
            record.labels.get(k).map(String::as_str),
            Some(v),
            "label {k}: {:?}",
            record.labels
        );
    }
    let spec = cd.spec(K8S_NAMESPACE, &id).await;
    assert_eq!(
        spec["linux"]["cgroupsPath"],
        format!("{}/{id}", pod.cgroup_parent)
    );
    assert_eq!(
        spec["annotations"]["io.kubernetes.cri.sandbox-id"],
        pod.id.as_str()
    );
    // Kubelet's annotations only reach containerd inside the CRI metadata extension.
    let ext = record
        .extensions
        .get("io.cri-containerd.container.metadata")
        .expect("CRI metadata extension");
    let meta: serde_json::Value = serde_json::from_slice(&ext.value).expect("extension is JSON");
    let annotations = &meta["Metadata"]["Config"]["annotations"];
    assert_eq!(
        annotations["io.kubernetes.container.restartCount"], "2",
        "{meta}"
    );
    assert_eq!(
        annotations["io.kubernetes.container.terminationMessagePath"],
        "/dev/termination-log"
    );
    assert!(
        meta["Metadata"]["Name"].as_str().unwrap().ends_with("_2"),
        "{meta}"
    );
    assert!(
        meta["Metadata"]["LogPath"]
            .as_str()
            .unwrap()
            .ends_with("worker/2.log"),
        "{meta}"
    );
    // The memory cgroup exists where the spec says.
    let memory = host::cgroup_v1_root("memory").expect("memory hierarchy");
    assert!(memory
        .join(format!("{}/{id}", pod.cgroup_parent).trim_start_matches('/'))
        .is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_survive_containerd_restart() {
    let mut cd = Containerd::start().await;
    let cri = cd.cri().await;
    let pod = cri.run_pod("survivor", "default").await;
    let id = pod.container("c").command(["sleep", "300"]).start().await;
    cri.wait_running(&id, EXIT_TIMEOUT).await;
    let shims = cd.shim_pids();
    assert!(!shims.is_empty(), "a running pod has a shim");
    let daemon = cd.pid().unwrap();

    let t = Instant::now();
    cd.restart().await;
    eprintln!(
        "timings: containerd restart until CRI answers {:?}",
        t.elapsed()
    );
    assert_ne!(cd.pid().unwrap(), daemon);
    assert_eq!(cd.shim_pids(), shims, "shims must survive a daemon restart");

    let cri = cd.cri().await;
    let status = cri.container_status(&id).await;
    assert_eq!(
        status.state,
        ContainerState::ContainerRunning as i32,
        "{status:?}"
    );
    cri.stop_container(&id, 0).await;
    let status = cri.wait_exited(&id, EXIT_TIMEOUT).await;
    assert_eq!(
        status.exit_code, 137,
        "stop with timeout 0 kills: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn teardown_leaves_no_shims_or_mounts() {
    let cd = Containerd::start().await;
    let cri = cd.cri().await;
    let pod = cri.pod("leaky", "default").pids_limit(64).run().await;
    let running = pod
        .container("sleeper")
        .command(["sleep", "300"])
        .start()
        .await;
    let _exited = pod
        .container("quitter")
        .command(["sh", "-c", "exit 1"])
        .start()
        .await;
    cri.wait_running(&running, EXIT_TIMEOUT).await;
    let plain = cd
        .plain("plain-sleeper")
        .command(["sleep", "300"])
        .run()
        .await;
    // Leaked on purpose: teardown must cope with a plain container nobody deleted.
    std::mem::forget(plain);

    let footprint = cd.footprint();
    assert!(!cd.shim_pids().is_empty(), "shims run before teardown");
    assert!(
        !host::mounts_under(cd.dir()).is_empty(),
        "rootfs mounts exist before teardown"
    );
    assert!(
        !host::cgroup_dirs(&cd.cgroup_parent()).is_empty(),
        "cgroups exist before teardown"
    );
    assert!(!footprint.shim_sockets.is_empty(), "shim sockets are known");

    let t = Instant::now();
    let problems = cd.teardown();
    eprintln!("timings: teardown {:?}", t.elapsed());
    assert!(problems.is_empty(), "teardown problems: {problems:#?}");
    let leftovers = footprint.leftovers();
    assert!(leftovers.is_empty(), "left behind: {leftovers:#?}");
}
