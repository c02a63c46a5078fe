//! Blocked images: containers started later from a blocked repository or digest are killed.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One blocked image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// Image repository (`servethehome/monero_cpu_minergate`), when blocked by repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Image ids and repo digests (`sha256:…`, `repo@sha256:…`), when blocked by digest; also
    /// recorded for repository blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
    /// The incident that blocked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
    /// Who blocked it (`policy:<name>` or a person).
    pub actor: String,
    /// When.
    pub at: model::Time,
}

/// The block list, persisted as JSON under the data dir.
#[derive(Debug, Default)]
pub struct BlockList {
    entries: Vec<BlockEntry>,
    path: Option<PathBuf>,
}

fn repo_of(image: &str) -> String {
    model::ContainerInfo::split_image(image).0
}

/// Docker Hub's implicit prefixes, removed so `docker.io/library/x` and `x` compare equal.
fn canonical_repo(repo: &str) -> &str {
    let r = repo.strip_prefix("docker.io/").unwrap_or(repo);
    r.strip_prefix("library/").unwrap_or(r)
}

impl BlockList {
    /// Loads the list from `path` (empty when the file does not exist).
    pub fn load(path: &Path) -> Result<Self, String> {
        let entries = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(BlockList {
            entries,
            path: Some(path.to_path_buf()),
        })
    }

    /// Adds an entry and saves the list.
    pub fn add(&mut self, entry: BlockEntry) -> Result<(), String> {
        if !self
            .entries
            .iter()
            .any(|e| e.repository == entry.repository && e.digests == entry.digests)
        {
            self.entries.push(entry);
        }
        self.save()
    }

    fn save(&self) -> Result<(), String> {
        let Some(p) = &self.path else { return Ok(()) };
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = p.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(&self.entries).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, body).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// Every entry.
    pub fn entries(&self) -> &[BlockEntry] {
        &self.entries
    }

    /// The entry blocking a container's image (`image` as configured, `image_id`, and any repo
    /// digests), if one does.
    pub fn find(&self, image: &str, ids: &[String]) -> Option<&BlockEntry> {
        let repo = repo_of(image);
        self.entries.iter().find(|e| {
            let by_repo = e
                .repository
                .as_deref()
                .is_some_and(|r| !image.is_empty() && canonical_repo(r) == canonical_repo(&repo));
            let by_digest = e.digests.iter().any(|d| {
                ids.iter().any(|i| i == d) || (!image.is_empty() && image.contains(d.as_str()))
            });
            by_repo || by_digest
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_repository_any_tag_and_digest_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocked.json");
        let mut b = BlockList::load(&path).unwrap();
        b.add(BlockEntry {
            repository: Some("servethehome/monero_cpu_minergate".into()),
            digests: vec![],
            incident_id: Some(1),
            actor: "policy:p".into(),
            at: chrono::Utc::now(),
        })
        .unwrap();
        b.add(BlockEntry {
            repository: None,
            digests: vec!["sha256:abc".into()],
            incident_id: Some(1),
            actor: "alice".into(),
            at: chrono::Utc::now(),
        })
        .unwrap();
        assert!(
            b.find("servethehome/monero_cpu_minergate:v2", &[])
                .is_some()
        );
        assert!(
            b.find("docker.io/servethehome/monero_cpu_minergate", &[])
                .is_some()
        );
        assert!(b.find("servethehome/other:latest", &[]).is_none());
        assert!(b.find("x:1", &["sha256:abc".into()]).is_some());
        let again = BlockList::load(&path).unwrap();
        assert_eq!(again.entries().len(), 2);
    }
}
