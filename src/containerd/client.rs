//! The gRPC connection to containerd and the few calls coroner makes.
//!
//! Every call carries a deadline, so a wedged containerd cannot stall a collector forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, MountsRequest,
};
use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient,
    events_client::EventsClient, images_client::ImagesClient, namespaces_client::NamespacesClient,
    tasks_client::TasksClient, version_client::VersionClient, Container, GetContainerRequest,
    GetImageRequest, ListNamespacesRequest, ListTasksRequest, ReadContentRequest, SubscribeRequest,
};
use containerd_client::types::Envelope;
use tonic::transport::Channel;

use super::decode::{
    decode_container, decode_task, overlay_lowerdirs, overlay_upperdir, ContainerMeta, DecodeError,
    TaskState,
};
use super::image::{decode_image, step, ImageDecodeError, Platform, ResolvedImage, Step};
use tonic::{Code, Request, Streaming};

/// Deadline of a unary call.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to containerd at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("containerd {call}: {status}")]
    Call {
        call: &'static str,
        status: tonic::Status,
    },
}

impl ClientError {
    pub fn label(&self) -> &'static str {
        match self {
            ClientError::Connect { .. } => "containerd_connect",
            ClientError::Call { status, .. } if status.code() == Code::NotFound => {
                "containerd_not_found"
            }
            ClientError::Call { .. } => "containerd_call",
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Call { status, .. } if status.code() == Code::NotFound)
    }
}

/// A container look-up that failed in the call or in decoding what came back.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl LookupError {
    pub fn label(&self) -> &'static str {
        match self {
            // Any failed call: the report says its metadata could not be looked up.
            LookupError::Client(_) => "containerd_metadata",
            LookupError::Decode(e) => e.label(),
        }
    }
}

/// An image name that could not be resolved down to its config.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Decode(#[from] ImageDecodeError),
    #[error("blob {digest}: larger than {limit} bytes, not an index or manifest")]
    TooLarge { digest: String, limit: usize },
}

impl ImageError {
    pub fn label(&self) -> &'static str {
        match self {
            ImageError::Client(_) => "image_lookup",
            ImageError::Decode(_) | ImageError::TooLarge { .. } => "image_decode",
        }
    }
}

/// Largest index or manifest read from the content store (real ones are a few KiB).
const MAX_IMAGE_BLOB: usize = 4 << 20;
/// Indexes followed before the manifest (an OCI layout's index, then a multi-platform one).
const MAX_INDEX_DEPTH: usize = 4;

/// A cheap-to-clone handle on one containerd socket.
#[derive(Clone, Debug)]
pub struct Containerd {
    pub(super) channel: Channel,
}

fn namespaced<T>(msg: T, namespace: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.set_timeout(CALL_TIMEOUT);
    if let Ok(ns) = namespace.parse() {
        req.metadata_mut().insert("containerd-namespace", ns);
    }
    req
}

impl Containerd {
    pub async fn connect(path: &Path) -> Result<Self, ClientError> {
        let channel =
            containerd_client::connect(path)
                .await
                .map_err(|source| ClientError::Connect {
                    path: path.to_path_buf(),
                    source,
                })?;
        Ok(Containerd { channel })
    }

    pub async fn version(&self) -> Result<String, ClientError> {
        let mut req = Request::new(());
        req.set_timeout(CALL_TIMEOUT);
        let v = VersionClient::new(self.channel.clone())
            .version(req)
            .await
            .map_err(|status| ClientError::Call {
                call: "Version",
                status,
            })?;
        Ok(v.into_inner().version)
    }

    /// Subscribes to events; `filters` use containerd's filter syntax and are OR-ed.
    pub async fn subscribe(
        &self,
        filters: Vec<String>,
    ) -> Result<Streaming<Envelope>, ClientError> {
        let resp = EventsClient::new(self.channel.clone())
            .subscribe(SubscribeRequest { filters })
            .await
            .map_err(|status| ClientError::Call {
                call: "Events.Subscribe",
                status,
            })?;
        Ok(resp.into_inner())
    }

    pub async fn namespaces(&self) -> Result<Vec<String>, ClientError> {
        let mut req = Request::new(ListNamespacesRequest::default());
        req.set_timeout(CALL_TIMEOUT);
        let resp = NamespacesClient::new(self.channel.clone())
            .list(req)
            .await
            .map_err(|status| ClientError::Call {
                call: "Namespaces.List",
                status,
            })?;
        Ok(resp
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect())
    }

    pub async fn tasks(&self, namespace: &str) -> Result<Vec<TaskState>, ClientError> {
        let resp = TasksClient::new(self.channel.clone())
            .list(namespaced(ListTasksRequest::default(), namespace))
            .await
            .map_err(|status| ClientError::Call {
                call: "Tasks.List",
                status,
            })?;
        Ok(resp.into_inner().tasks.iter().map(decode_task).collect())
    }

    /// What the container record says: command, image, labels, cgroup path, Kubernetes identity.
    pub async fn container_meta(
        &self,
        namespace: &str,
        id: &str,
    ) -> Result<ContainerMeta, LookupError> {
        let container = self.container(namespace, id).await?;
        Ok(decode_container(&container)?)
    }

    async fn container(&self, namespace: &str, id: &str) -> Result<Container, ClientError> {
        let resp = ContainersClient::new(self.channel.clone())
            .get(namespaced(
                GetContainerRequest { id: id.to_string() },
                namespace,
            ))
            .await
            .map_err(|status| ClientError::Call {
                call: "Containers.Get",
                status,
            })?;
        resp.into_inner()
            .container
            .ok_or_else(|| ClientError::Call {
                call: "Containers.Get",
                status: tonic::Status::not_found(id),
            })
    }

    /// Digest of the manifest (or index) an image name points to now.
    pub async fn image_digest(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, ClientError> {
        let resp = ImagesClient::new(self.channel.clone())
            .get(namespaced(
                GetImageRequest {
                    name: name.to_string(),
                },
                namespace,
            ))
            .await
            .map_err(|status| ClientError::Call {
                call: "Images.Get",
                status,
            })?;
        Ok(resp
            .into_inner()
            .image
            .and_then(|i| i.target)
            .map(|t| t.digest)
            .filter(|d| !d.is_empty()))
    }

    /// The directories of a container's snapshot, as containerd would mount it: the writable
    /// (upper) one, every file the container wrote, there until the container is removed; and
    /// the image's layers below it. Empty for a snapshotter whose mounts are not overlays.
    pub async fn snapshot_dirs(
        &self,
        namespace: &str,
        snapshotter: &str,
        key: &str,
    ) -> Result<SnapshotDirs, ClientError> {
        let resp = SnapshotsClient::new(self.channel.clone())
            .mounts(namespaced(
                MountsRequest {
                    snapshotter: snapshotter.to_string(),
                    key: key.to_string(),
                },
                namespace,
            ))
            .await
            .map_err(|status| ClientError::Call {
                call: "Snapshots.Mounts",
                status,
            })?;
        let mounts = resp.into_inner().mounts;
        Ok(SnapshotDirs {
            upper: mounts.iter().find_map(|m| {
                overlay_upperdir(m.options.iter().map(String::as_str)).map(PathBuf::from)
            }),
            lower: mounts
                .iter()
                .map(|m| overlay_lowerdirs(m.options.iter().map(String::as_str)))
                .find(|l| !l.is_empty())
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        })
    }

    /// What `name` resolves to in `namespace`'s image store now, down to the config this node's
    /// platform runs; `None` when no image has that name.
    pub async fn resolve_image(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ResolvedImage>, ImageError> {
        let resp = ImagesClient::new(self.channel.clone())
            .get(namespaced(
                GetImageRequest {
                    name: name.to_string(),
                },
                namespace,
            ))
            .await
            .map_err(|status| ClientError::Call {
                call: "Images.Get",
                status,
            });
        let image = match resp {
            Ok(r) => r.into_inner().image,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let Some(image) = image else {
            return Ok(None);
        };
        let record = decode_image(&image)?;
        let platform = Platform::node();
        let mut desc = record.target.clone();
        for _ in 0..=MAX_INDEX_DEPTH {
            let blob = self.read_blob(namespace, &desc.digest).await?;
            match step(&desc, &blob, &platform)? {
                Step::Index(next) => desc = next,
                Step::Manifest { config_digest } => {
                    return Ok(Some(ResolvedImage {
                        record,
                        manifest_digest: desc.digest,
                        config_digest,
                    }))
                }
            }
        }
        Err(ImageDecodeError::TooDeep {
            name: name.to_string(),
            depth: MAX_INDEX_DEPTH,
        }
        .into())
    }

    /// A small blob (an index or manifest) from the content store.
    async fn read_blob(&self, namespace: &str, digest: &str) -> Result<Vec<u8>, ImageError> {
        let call = |status| ClientError::Call {
            call: "Content.Read",
            status,
        };
        let mut stream = ContentClient::new(self.channel.clone())
            .read(namespaced(
                ReadContentRequest {
                    digest: digest.to_string(),
                    offset: 0,
                    size: 0,
                },
                namespace,
            ))
            .await
            .map_err(call)?
            .into_inner();
        let mut blob = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(call)? {
            blob.extend_from_slice(&chunk.data);
            if blob.len() > MAX_IMAGE_BLOB {
                return Err(ImageError::TooLarge {
                    digest: digest.to_string(),
                    limit: MAX_IMAGE_BLOB,
                });
            }
        }
        Ok(blob)
    }
}

/// A container snapshot's overlay directories ([`Containerd::snapshot_dirs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotDirs {
    pub upper: Option<PathBuf>,
    /// The image's layers, top first.
    pub lower: Vec<PathBuf>,
}
