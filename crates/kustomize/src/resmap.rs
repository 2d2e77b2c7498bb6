//! An ordered list of resources with id lookups (kustomize's ResMap).

use crate::error::{Error, Result};
use crate::resid::ResId;
use crate::resource::Resource;

/// Resources in the order they entered the build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResMap {
    resources: Vec<Resource>,
}

impl ResMap {
    /// An empty map.
    pub fn new() -> ResMap {
        ResMap::default()
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The resources in order.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// The resources, mutably.
    pub fn resources_mut(&mut self) -> &mut Vec<Resource> {
        &mut self.resources
    }

    /// Consumes the map.
    pub fn into_resources(self) -> Vec<Resource> {
        self.resources
    }

    /// Appends, refusing an object whose current id is already present.
    pub fn append(&mut self, r: Resource) -> Result<()> {
        let id = r.cur_id();
        if self
            .resources
            .iter()
            .any(|x| x.name() == id.name && x.cur_id().equals(&id))
        {
            return Err(Error::Conflict(id.to_string()));
        }
        self.resources.push(r);
        Ok(())
    }

    /// Appends every resource of `other`.
    pub fn append_all(&mut self, other: ResMap) -> Result<()> {
        for r in other.resources {
            self.append(r)?;
        }
        Ok(())
    }

    /// Appends without checking ids.
    pub fn push_unchecked(&mut self, r: Resource) {
        self.resources.push(r);
    }

    /// Indices of resources whose current id equals `id`.
    pub fn find_by_current_id(&self, id: &ResId) -> Vec<usize> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.name() == id.name && r.cur_id().equals(id))
            .map(|(i, _)| i)
            .collect()
    }

    /// Indices of resources whose current or any earlier id equals `id`.
    pub fn find_by_any_id(&self, id: &ResId) -> Vec<usize> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.all_ids().iter().any(|x| x.equals(id)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Removes and returns the resource at `index`.
    pub fn remove(&mut self, index: usize) -> Resource {
        self.resources.remove(index)
    }

    /// Keeps only resources for which `f` is true.
    pub fn retain(&mut self, f: impl FnMut(&Resource) -> bool) {
        self.resources.retain(f);
    }
}

impl FromIterator<Resource> for ResMap {
    fn from_iter<T: IntoIterator<Item = Resource>>(iter: T) -> Self {
        ResMap {
            resources: iter.into_iter().collect(),
        }
    }
}
