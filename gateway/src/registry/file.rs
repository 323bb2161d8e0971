//! The registry file as written by the core tax system, before validation.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    #[serde(default)]
    pub tax_authorities: Vec<TaxAuthorityRow>,
    #[serde(default)]
    pub enterprises: Vec<EnterpriseRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxAuthorityRow {
    pub code: String,
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnterpriseRow {
    #[serde(default)]
    pub uscc: Option<String>,
    #[serde(default)]
    pub tin: Option<String>,
    pub name: String,
    pub tax_authority: String,
    pub password: String,
    #[serde(default)]
    pub officers: Vec<OfficerRow>,
}

impl std::fmt::Debug for EnterpriseRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterpriseRow")
            .field("uscc", &self.uscc)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerRow {
    pub role: String,
    pub name: String,
    pub id_number: String,
    pub phone: String,
}
