//! The lake root: one object store URL, opened through `object_store` only.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::config::{LakeConfig, S3Config};
use crate::error::{LakeError, Result};

/// The lake: a store rooted at its scheme's root (bucket, `/`, memory) plus the lake's prefix in it.
#[derive(Debug, Clone)]
pub struct Lake {
    /// Root URL of the lake, always ending in `/`.
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl Lake {
    /// Opens the lake named by the config; a relative path is resolved against `project_dir`.
    pub fn open(config: &LakeConfig, project_dir: &FsPath) -> Result<Self> {
        let url = resolve_lake_url(&config.url, project_dir)?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => Arc::new(LocalFileSystem::new()),
            "memory" => Arc::new(InMemory::new()),
            "s3" => Arc::new(build_s3(&url, &config.s3)?),
            other => {
                return Err(LakeError::LakeUrl {
                    url: config.url.clone(),
                    message: format!(
                        "unsupported scheme `{other}`; use a directory, file://, s3:// or memory://"
                    ),
                });
            }
        };
        Ok(Self::with_store(url, store))
    }

    /// A lake over an existing store (tests share one `InMemory` between commands this way).
    pub fn with_store(url: Url, store: Arc<dyn ObjectStore>) -> Self {
        let prefix = Path::from_url_path(url.path()).unwrap_or_default();
        Self { url, store, prefix }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The store, rooted at the scheme root (not at the lake prefix).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// URL of the store root, as DataFusion's object store registry keys it.
    pub fn store_root_url(&self) -> Url {
        let mut root = self.url.clone();
        root.set_path("/");
        root
    }

    /// Path inside the store of `relative` (like `raw/orders`) below the lake root.
    pub fn path(&self, relative: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// URL of a folder below the lake root, ending in `/`.
    pub fn folder_url(&self, relative: &str) -> Url {
        let relative = relative.trim_matches('/');
        let joined = format!("{}{}/", self.url.as_str(), relative);
        Url::parse(&joined).expect("lake URL joined with a relative path stays a URL")
    }

    /// Fails fast, with a hint, when the lake cannot be listed (bad endpoint, credentials...).
    pub async fn check_reachable(&self) -> Result<()> {
        match self.store.list_with_delimiter(Some(&self.prefix)).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(LakeError::Unreachable {
                url: self.url.to_string(),
                source,
            }),
        }
    }
}

fn resolve_lake_url(raw: &str, project_dir: &FsPath) -> Result<Url> {
    let bad = |message: String| LakeError::LakeUrl {
        url: raw.to_string(),
        message,
    };
    let trimmed = raw.trim();
    let mut url = if trimmed.contains("://") {
        Url::parse(trimmed).map_err(|e| bad(e.to_string()))?
    } else {
        let dir = project_dir.join(trimmed);
        let dir = std::path::absolute(&dir).map_err(|e| bad(e.to_string()))?;
        Url::from_directory_path(&dir).map_err(|_| bad("not an absolute directory".to_string()))?
    };
    if url.scheme() == "s3" && url.host_str().is_none_or(str::is_empty) {
        return Err(bad(
            "an s3:// URL needs a bucket: s3://bucket/prefix".to_string()
        ));
    }
    if url.scheme() == "memory" && url.host_str().is_some_and(|h| !h.is_empty()) {
        // `memory://lake` would put "lake" in the host; keep it as a path.
        let path = format!("/{}{}", url.host_str().unwrap_or_default(), url.path());
        url = Url::parse(&format!("memory://{path}")).map_err(|e| bad(e.to_string()))?;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn build_s3(url: &Url, options: &S3Config) -> Result<object_store::aws::AmazonS3> {
    let bucket = url.host_str().unwrap_or_default();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(RetryConfig {
            max_retries: 4,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(300)),
        );
    if let Some(endpoint) = &options.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &options.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(allow_http) = options.allow_http {
        builder = builder.with_allow_http(allow_http);
    }
    builder.build().map_err(|e| LakeError::LakeUrl {
        url: url.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lake(url: &str) -> Lake {
        let config = LakeConfig {
            url: url.to_string(),
            ..LakeConfig::default()
        };
        Lake::open(&config, FsPath::new("/project")).unwrap()
    }

    #[test]
    fn relative_path_resolves_against_the_project() {
        let lake = lake("data/lake");
        assert_eq!(lake.url().as_str(), "file:///project/data/lake/");
        assert_eq!(
            lake.path("raw/orders").as_ref(),
            "project/data/lake/raw/orders"
        );
        assert_eq!(
            lake.folder_url("curated/staging/orders").as_str(),
            "file:///project/data/lake/curated/staging/orders/"
        );
    }

    #[test]
    fn memory_lake_keeps_its_name_as_a_path() {
        let lake = lake("memory://lake");
        assert_eq!(lake.url().as_str(), "memory:///lake/");
        assert_eq!(lake.path("raw").as_ref(), "lake/raw");
        assert_eq!(lake.store_root_url().as_str(), "memory:///");
    }

    #[test]
    fn s3_needs_a_bucket_and_unknown_schemes_are_refused() {
        let config = |url: &str| LakeConfig {
            url: url.to_string(),
            ..LakeConfig::default()
        };
        let err = Lake::open(&config("s3:///x"), FsPath::new("/p")).unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
        let err = Lake::open(&config("ftp://host/x"), FsPath::new("/p")).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }
}
