//! Neutron v2.0: the network backends are attached to, looked up by exact name (or taken as
//! an id).

use serde::Deserialize;

use super::auth::{Api, Retry, Session};
use super::compute::check;
use super::http::{encode_query, query_of};
use crate::cloud::CloudError;

/// A network (the fields we use).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
struct Link {
    href: String,
    #[serde(default)]
    rel: String,
}

/// A page of `GET /v2.0/networks`.
#[derive(Debug, Deserialize)]
pub struct NetworksPage {
    pub networks: Vec<Network>,
    #[serde(default)]
    networks_links: Option<Vec<Link>>,
}

/// The network named exactly `name`, or, if none has that name, the network whose id it is.
pub(crate) fn find_network(session: &Session, name: &str) -> Result<Network, CloudError> {
    let mut all = Vec::new();
    let mut path = format!("/networks?name={}", encode_query(name));
    let mut seen = std::collections::HashSet::new();
    loop {
        let r = session.call("GET", Api::Network, &path, None, Retry::Yes)?;
        check("GET /v2.0/networks", &r)?;
        let page: NetworksPage = r.json().map_err(|message| CloudError::Api {
            what: "GET /v2.0/networks".into(),
            status: r.status,
            message,
        })?;
        let n = page.networks.len();
        all.extend(page.networks);
        let next = page
            .networks_links
            .as_ref()
            .and_then(|l| l.iter().find(|l| l.rel == "next"))
            .and_then(|l| query_of(&l.href).map(str::to_owned));
        match next {
            Some(q) if n > 0 && seen.insert(q.clone()) => path = format!("/networks?{q}"),
            _ => break,
        }
    }
    match super::pick_exact("network", name, all, |n| &n.name, |n| &n.id) {
        Err(CloudError::NotFound { what }) => {
            let r = session.call(
                "GET",
                Api::Network,
                &format!("/networks/{}", encode_query(name)),
                None,
                Retry::Yes,
            )?;
            #[derive(Deserialize)]
            struct One {
                network: Network,
            }
            match (r.status, r.json::<One>()) {
                (200, Ok(one)) => Ok(one.network),
                _ => Err(CloudError::NotFound { what }),
            }
        }
        other => other,
    }
}
