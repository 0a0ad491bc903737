//! Glance v2: the image to boot from, looked up by exact name (or taken as an id).

use serde::Deserialize;

use super::auth::{Api, Retry, Session};
use super::compute::check;
use super::http::encode_query;
use crate::cloud::CloudError;

/// An image (the fields we use).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    /// Its name (may be null in Glance).
    #[serde(default)]
    pub name: Option<String>,
    /// `active`, `queued`, ...
    #[serde(default)]
    pub status: Option<String>,
}

/// A page of `GET /v2/images`.
#[derive(Debug, Deserialize)]
pub struct ImagesPage {
    pub images: Vec<Image>,
    /// The next page, as a path from the endpoint's root (`/v2/images?marker=...`).
    #[serde(default)]
    pub next: Option<String>,
}

/// The active image named exactly `name`, or, if none has that name, the image whose id it
/// is.
pub(crate) fn find_image(session: &Session, name: &str) -> Result<Image, CloudError> {
    let mut all = Vec::new();
    let mut r = session.call(
        "GET",
        Api::Image,
        &format!("/images?name={}", encode_query(name)),
        None,
        Retry::Yes,
    )?;
    let mut seen = std::collections::HashSet::new();
    loop {
        check("GET /v2/images", &r)?;
        let page: ImagesPage = r.json().map_err(|message| CloudError::Api {
            what: "GET /v2/images".into(),
            status: r.status,
            message,
        })?;
        let n = page.images.len();
        all.extend(page.images);
        match page.next {
            Some(next) if n > 0 && seen.insert(next.clone()) => {
                r = session.call("GET", Api::ImageRoot, &next, None, Retry::Yes)?;
            }
            _ => break,
        }
    }
    let active: Vec<Image> = all
        .into_iter()
        .filter(|i| i.status.as_deref().is_none_or(|s| s == "active"))
        .collect();
    match super::pick_exact(
        "image",
        name,
        active,
        |i| i.name.as_deref().unwrap_or(""),
        |i| &i.id,
    ) {
        Ok(i) => Ok(i),
        Err(CloudError::NotFound { what }) => {
            // Not a name: maybe an id.
            let r = session.call(
                "GET",
                Api::Image,
                &format!("/images/{}", encode_query(name)),
                None,
                Retry::Yes,
            )?;
            if r.status == 200
                && let Ok(i) = r.json::<Image>()
            {
                return Ok(i);
            }
            Err(CloudError::NotFound { what })
        }
        Err(e) => Err(e),
    }
}
