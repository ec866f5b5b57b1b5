//! The product master: what each GTIN an organisation handles is (name, NDC, whether it
//! is serialized, pack size). Loaded by API (`PUT /api/v1/products`) or CSV (`swt import
//! products FILE`), always as upserts by GTIN; every change reaches the scanners through
//! the reference data in the same transaction.

use std::io::Read;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ReferenceError, Touched};
use crate::db::entity::product;
use crate::serials::import_csv::{BadLine, MAX_REPORTED};

/// Products per API call or per CSV file (a large wholesaler's master is ~50,000).
pub const MAX_PRODUCTS: usize = 100_000;

/// One product as sent by API or read from a CSV line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// GTIN-8, -12, -13 or -14 (stored as GTIN-14).
    pub gtin: String,
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// US National Drug Code, 10 or 11 digits, hyphens allowed.
    #[serde(default)]
    pub ndc: Option<String>,
    /// Packs carry a serial (default true).
    #[serde(default = "yes")]
    pub serialized: bool,
    /// Pack size as printed, e.g. "30 tablets".
    #[serde(default)]
    pub pack_size: Option<String>,
}

fn yes() -> bool {
    true
}

/// A product to load with its line number (CSV) or position (API), or why it could not
/// be read.
pub type Numbered = (u64, Result<ProductInput, String>);

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductView {
    /// GTIN-14.
    pub gtin: String,
    /// Display name.
    pub name: String,
    /// NDC, digits only.
    pub ndc: Option<String>,
    /// Packs carry a serial.
    pub serialized: bool,
    /// Pack size.
    pub pack_size: Option<String>,
}

impl From<product::Model> for ProductView {
    fn from(p: product::Model) -> Self {
        Self {
            gtin: p.gtin,
            name: p.name,
            ndc: p.ndc,
            serialized: p.serialized,
            pack_size: p.pack_size,
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductReport {
    /// Products read (lines after the header, or list entries).
    pub lines: u64,
    /// Products written (0 when a strict load found bad lines).
    pub imported: u64,
    /// Products refused.
    pub bad: u64,
    /// The first refused lines (CSV line number; list index + 1 for the API).
    #[schema(value_type = Vec<Object>)]
    pub bad_lines: Vec<BadLine>,
    /// The reference-data version after the load (scanners get the change from it on).
    pub version: u64,
}

/// A valid product, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checked {
    gtin: String,
    name: String,
    ndc: Option<String>,
    serialized: bool,
    pack_size: Option<String>,
}

fn check(p: &ProductInput) -> Result<Checked, String> {
    let gtin = crate::serials::parse_gtin(&p.gtin)?;
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("name must be 1 to 200 printable characters".to_owned());
    }
    let ndc = match p.ndc.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) => {
            let digits: String = n.chars().filter(|c| *c != '-').collect();
            if !(digits.len() == 10 || digits.len() == 11)
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "NDC {n:?} must be 10 or 11 digits (hyphens allowed)"
                ));
            }
            Some(digits)
        }
    };
    let pack_size = match p.pack_size.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) if s.chars().count() <= 100 && !s.chars().any(char::is_control) => {
            Some(s.to_owned())
        }
        Some(_) => return Err("pack_size must be at most 100 printable characters".to_owned()),
    };
    Ok(Checked {
        gtin: gtin.as_str().to_owned(),
        name: name.to_owned(),
        ndc,
        serialized: p.serialized,
        pack_size,
    })
}

/// Checks every product, then (unless `strict` and some are bad) writes the good ones
/// in one transaction. `first_line` numbers the entries in the report.
pub async fn load(
    db: &DatabaseConnection,
    org: &str,
    input: &[Numbered],
    strict: bool,
) -> Result<ProductReport, ReferenceError> {
    if input.len() > MAX_PRODUCTS {
        return Err(ReferenceError::Invalid(format!(
            "{} products in one load; at most {MAX_PRODUCTS}",
            input.len()
        )));
    }
    let mut report = ProductReport {
        lines: input.len() as u64,
        ..Default::default()
    };
    let mut good: Vec<Checked> = Vec::with_capacity(input.len());
    for (line, p) in input {
        match p.as_ref().map_err(Clone::clone).and_then(check) {
            Ok(c) => good.push(c),
            Err(reason) => {
                report.bad += 1;
                if report.bad_lines.len() < MAX_REPORTED {
                    report.bad_lines.push(BadLine {
                        line: *line,
                        reason,
                    });
                }
            }
        }
    }
    let txn = db.begin().await?;
    let refused = strict && report.bad > 0;
    if !refused && !good.is_empty() {
        // The last entry for a GTIN wins, as it would line by line.
        let mut by_gtin = std::collections::BTreeMap::new();
        for c in good {
            by_gtin.insert(c.gtin.clone(), c);
        }
        report.imported = by_gtin.len() as u64;
        let now = chrono::Utc::now();
        let rows: Vec<Checked> = by_gtin.into_values().collect();
        for chunk in rows.chunks(500) {
            let models = chunk.iter().map(|c| product::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                organisation_id: Set(org.to_owned()),
                gtin: Set(c.gtin.clone()),
                name: Set(c.name.clone()),
                strength: Set(None),
                pack_size: Set(c.pack_size.clone()),
                ndc: Set(c.ndc.clone()),
                serialized: Set(c.serialized),
                created_at: Set(now),
            });
            product::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::columns([product::Column::OrganisationId, product::Column::Gtin])
                        .update_columns([
                            product::Column::Name,
                            product::Column::PackSize,
                            product::Column::Ndc,
                            product::Column::Serialized,
                        ])
                        .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        let gtins: Vec<String> = rows.into_iter().map(|c| c.gtin).collect();
        super::touched(&txn, org, Touched::Products(&gtins)).await?;
    }
    report.version = super::current_version(&txn, org).await?;
    txn.commit().await?;
    Ok(report)
}

/// Reads a product CSV: a header naming `gtin` and `name`, optionally `ndc`,
/// `serialized` (true/false/yes/no/1/0) and `pack_size`, in any order. Lines that do not
/// parse are returned as errors with their line number, never dropped.
pub fn read_csv<R: Read>(
    reader: R,
) -> Result<Vec<Numbered>, ReferenceError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut rec = csv::StringRecord::new();
    let bad_file = |e: csv::Error| ReferenceError::Invalid(format!("reading the CSV file: {e}"));
    if !rdr.read_record(&mut rec).map_err(bad_file)? {
        return Err(ReferenceError::Invalid(
            "the file is empty: the first line must name the columns gtin,name[,ndc,serialized,pack_size]".to_owned(),
        ));
    }
    let mut cols: [Option<usize>; 5] = [None; 5];
    for (i, name) in rec.iter().enumerate() {
        let name = name
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        let slot = match name.as_str() {
            "gtin" => 0,
            "name" => 1,
            "ndc" => 2,
            "serialized" => 3,
            "pack_size" => 4,
            other => {
                return Err(ReferenceError::Invalid(format!(
                    "line 1: unknown column {other:?}: expected gtin, name, ndc, serialized, pack_size"
                )));
            }
        };
        if cols[slot].replace(i).is_some() {
            return Err(ReferenceError::Invalid(format!(
                "line 1: column {name:?} appears twice"
            )));
        }
    }
    let (Some(gtin), Some(name)) = (cols[0], cols[1]) else {
        return Err(ReferenceError::Invalid(
            "line 1: the columns gtin and name are required".to_owned(),
        ));
    };
    let width = rec.len();
    let mut out = Vec::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.push((line, Err(format!("not CSV: {e}"))));
                if out.len() > MAX_PRODUCTS {
                    break;
                }
                continue;
            }
        }
        let line = rec.position().map_or(0, |p| p.line());
        if out.len() >= MAX_PRODUCTS {
            return Err(ReferenceError::Invalid(format!(
                "more than {MAX_PRODUCTS} products in one file: split it"
            )));
        }
        if rec.len() != width {
            out.push((
                line,
                Err(format!("{} fields, the header has {width}", rec.len())),
            ));
            continue;
        }
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).map(str::trim).unwrap_or("");
        let serialized = match get(cols[3]).to_ascii_lowercase().as_str() {
            "" | "true" | "yes" | "1" | "y" => Ok(true),
            "false" | "no" | "0" | "n" => Ok(false),
            other => Err(format!("serialized {other:?}: expected true or false")),
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        out.push((
            line,
            serialized.map(|serialized| ProductInput {
                gtin: get(Some(gtin)).to_owned(),
                name: get(Some(name)).to_owned(),
                ndc: opt(get(cols[2])),
                serialized,
                pack_size: opt(get(cols[4])),
            }),
        ));
    }
    Ok(out)
}

/// Products of `org`, by GTIN, from `after` (exclusive), at most `limit`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<ProductView>, ReferenceError> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut q = product::Entity::find().filter(product::Column::OrganisationId.eq(org));
    if let Some(a) = after {
        q = q.filter(product::Column::Gtin.gt(a));
    }
    Ok(q.order_by_asc(product::Column::Gtin)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(ProductView::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(gtin: &str, name: &str) -> ProductInput {
        ProductInput {
            gtin: gtin.into(),
            name: name.into(),
            ndc: None,
            serialized: true,
            pack_size: None,
        }
    }

    #[test]
    fn checks_name_gtin_and_ndc() {
        assert!(check(&input("09506000134352", "Aspirin")).is_ok());
        assert_eq!(
            check(&input("9506000134352", "A")).unwrap().gtin,
            "09506000134352"
        );
        assert!(
            check(&input("09506000134353", "A"))
                .unwrap_err()
                .contains("GTIN")
        );
        assert!(check(&input("09506000134352", "  ")).is_err());
        let mut p = input("09506000134352", "A");
        p.ndc = Some("0002-3227-30".into());
        assert_eq!(check(&p).unwrap().ndc.as_deref(), Some("0002322730"));
        p.ndc = Some("12".into());
        assert!(check(&p).unwrap_err().contains("NDC"));
    }

    #[test]
    fn csv_lines_keep_their_numbers_and_reasons() {
        let text = "name,gtin,serialized\nAspirin,09506000134352,yes\nBad,0950600013435X,no\nX,09506000134352,maybe\nshort\n";
        let rows = read_csv(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].0, 2);
        assert!(rows[0].1.is_ok());
        assert!(check(rows[1].1.as_ref().unwrap()).is_err());
        assert_eq!(rows[2].0, 4);
        assert!(rows[2].1.as_ref().unwrap_err().contains("serialized"));
        assert!(rows[3].1.as_ref().unwrap_err().contains("fields"));
        assert!(read_csv("gtin,colour\n".as_bytes()).is_err());
        assert!(read_csv("name\n".as_bytes()).is_err());
        assert!(read_csv("".as_bytes()).is_err());
    }
}
