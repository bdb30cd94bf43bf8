//! The model graph: dependencies from table references, checked for unknown tables and cycles.

use std::collections::{BTreeMap, BTreeSet};

use cdphub_lake::RAW_SCHEMA;
use datafusion::common::TableReference;

use crate::error::{ModelError, Result};
use crate::project::{Model, ModelName};

#[derive(Debug)]
pub struct ModelGraph {
    /// In a topological order (dependencies first, ties by name).
    pub models: Vec<Model>,
    /// For each model, the models it reads (its SQL and its tests).
    pub upstream: BTreeMap<ModelName, BTreeSet<ModelName>>,
    /// For each model, the raw sources its SQL reads.
    pub raw_reads: BTreeMap<ModelName, BTreeSet<String>>,
}

impl ModelGraph {
    /// Resolves every reference against the models and the configured raw sources.
    pub fn build(models: Vec<Model>, raw_sources: &BTreeSet<String>) -> Result<Self> {
        let names: BTreeSet<ModelName> = models.iter().map(|m| m.name.clone()).collect();
        let mut upstream = BTreeMap::new();
        let mut raw_reads = BTreeMap::new();
        for model in &models {
            let mut deps = BTreeSet::new();
            let mut raws = BTreeSet::new();
            let references = model
                .reads
                .iter()
                .chain(&model.test_reads)
                .chain(&model.function_reads);
            for reference in references {
                match resolve(model, reference, &names, raw_sources)? {
                    Resolved::Model(dep) if dep != model.name => {
                        deps.insert(dep);
                    }
                    Resolved::Model(_) | Resolved::Ignored => {}
                    Resolved::Raw(source) => {
                        raws.insert(source);
                    }
                }
            }
            upstream.insert(model.name.clone(), deps);
            raw_reads.insert(model.name.clone(), raws);
        }
        // A model reading itself (outside its tests, and outside a table function argument,
        // which reads the last published version) is a cycle of one.
        for model in &models {
            let reads_itself = model
                .reads
                .iter()
                .any(|r| matches!(resolve(model, r, &names, raw_sources), Ok(Resolved::Model(n)) if n == model.name));
            if reads_itself {
                return Err(ModelError::Cycle {
                    cycle: format!("{0} -> {0}", model.name),
                    files: model.path.display().to_string(),
                });
            }
        }
        let order = topological_order(&models, &upstream)?;
        let mut by_name: BTreeMap<ModelName, Model> =
            models.into_iter().map(|m| (m.name.clone(), m)).collect();
        let models = order
            .into_iter()
            .map(|name| {
                by_name
                    .remove(&name)
                    .expect("ordered names come from the models")
            })
            .collect();
        Ok(Self {
            models,
            upstream,
            raw_reads,
        })
    }

    pub fn model(&self, name: &ModelName) -> Option<&Model> {
        self.models.iter().find(|m| &m.name == name)
    }

    pub fn downstream(&self, name: &ModelName) -> BTreeSet<ModelName> {
        self.upstream
            .iter()
            .filter(|(_, deps)| deps.contains(name))
            .map(|(model, _)| model.clone())
            .collect()
    }

    /// dbt-style selection: `model`, `model+` (and downstream), `+model` (and upstream),
    /// or a schema name (`staging`). Model names may omit the schema when unambiguous.
    pub fn select(&self, selectors: &[String]) -> Result<BTreeSet<ModelName>> {
        if selectors.is_empty() {
            return Ok(self.models.iter().map(|m| m.name.clone()).collect());
        }
        let mut selected = BTreeSet::new();
        for selector in selectors {
            let with_upstream = selector.starts_with('+');
            let with_downstream = selector.ends_with('+') && selector.len() > 1;
            let core = selector.trim_matches('+');
            let roots = self.match_selector(selector, core)?;
            for root in roots {
                if with_upstream {
                    selected.extend(self.closure(&root, |n| self.upstream[n].clone()));
                }
                if with_downstream {
                    selected.extend(self.closure(&root, |n| self.downstream(n)));
                }
                selected.insert(root);
            }
        }
        Ok(selected)
    }

    fn match_selector(&self, selector: &str, core: &str) -> Result<Vec<ModelName>> {
        let matches: Vec<ModelName> = self
            .models
            .iter()
            .map(|m| &m.name)
            .filter(|n| n.to_string() == core || n.table == core || n.schema == core)
            .cloned()
            .collect();
        let exact: Vec<ModelName> = matches
            .iter()
            .filter(|n| n.to_string() == core || n.schema == core)
            .cloned()
            .collect();
        if !exact.is_empty() {
            return Ok(exact);
        }
        match matches.len() {
            1 => Ok(matches),
            0 => Err(ModelError::UnknownSelector {
                selector: selector.to_string(),
                hint: "; `cdphub models` lists the models".to_string(),
            }),
            _ => Err(ModelError::UnknownSelector {
                selector: selector.to_string(),
                hint: format!(
                    "; it is ambiguous, use one of: {}",
                    matches
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    fn closure(
        &self,
        start: &ModelName,
        next: impl Fn(&ModelName) -> BTreeSet<ModelName>,
    ) -> BTreeSet<ModelName> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(name) = stack.pop() {
            for n in next(&name) {
                if seen.insert(n.clone()) {
                    stack.push(n);
                }
            }
        }
        seen
    }
}

enum Resolved {
    Model(ModelName),
    Raw(String),
    /// `information_schema` and the like: catalog metadata, not data.
    Ignored,
}

fn resolve(
    model: &Model,
    reference: &TableReference,
    models: &BTreeSet<ModelName>,
    raw_sources: &BTreeSet<String>,
) -> Result<Resolved> {
    let unknown = |hint: String| ModelError::UnknownTable {
        path: model.path.clone(),
        model: model.name.to_string(),
        table: reference.to_string(),
        hint,
    };
    let table = reference.table();
    let Some(schema) = reference.schema() else {
        let candidates: Vec<String> = models
            .iter()
            .filter(|m| m.table == table)
            .map(ToString::to_string)
            .chain(
                raw_sources
                    .iter()
                    .filter(|s| s.as_str() == table)
                    .map(|s| format!("raw.{s}")),
            )
            .collect();
        return Err(unknown(format!(
            "\n  hint: models use schema-qualified names{}",
            if candidates.is_empty() {
                String::new()
            } else {
                format!(", did you mean {}?", candidates.join(" or "))
            }
        )));
    };
    if schema == "information_schema" {
        return Ok(Resolved::Ignored);
    }
    if schema == RAW_SCHEMA {
        if model.name.schema != "staging" {
            return Err(unknown(
                "\n  hint: only staging models read raw.*; read the staging table instead"
                    .to_string(),
            ));
        }
        return if raw_sources.contains(table) {
            Ok(Resolved::Raw(table.to_string()))
        } else {
            Err(unknown(format!(
                "\n  hint: raw sources are declared in cdphub.toml under [sources]; known: {}",
                raw_sources.iter().cloned().collect::<Vec<_>>().join(", ")
            )))
        };
    }
    let name = ModelName::new(schema, table);
    if models.contains(&name) {
        return Ok(Resolved::Model(name));
    }
    let similar: Vec<String> = models
        .iter()
        .filter(|m| m.table == table || m.schema == schema)
        .map(ToString::to_string)
        .collect();
    Err(unknown(if similar.is_empty() {
        "\n  hint: no model builds it; add sql/<schema>/<name>.sql".to_string()
    } else {
        format!(
            "\n  hint: no model builds it; models nearby: {}",
            similar.join(", ")
        )
    }))
}

fn topological_order(
    models: &[Model],
    upstream: &BTreeMap<ModelName, BTreeSet<ModelName>>,
) -> Result<Vec<ModelName>> {
    let mut remaining: BTreeMap<ModelName, BTreeSet<ModelName>> = upstream.clone();
    let mut order = Vec::new();
    loop {
        let ready: Vec<ModelName> = remaining
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            remaining.remove(&name);
            for deps in remaining.values_mut() {
                deps.remove(&name);
            }
            order.push(name);
        }
    }
    if remaining.is_empty() {
        return Ok(order);
    }
    // Walk from any blocked model along blocked dependencies until a name repeats.
    let mut path: Vec<ModelName> = vec![remaining.keys().next().expect("non-empty").clone()];
    loop {
        let last = path.last().expect("non-empty path");
        let next = remaining[last]
            .iter()
            .next()
            .expect("blocked models have deps")
            .clone();
        if let Some(start) = path.iter().position(|n| n == &next) {
            let cycle: Vec<ModelName> = path[start..].iter().cloned().chain([next]).collect();
            let files = cycle[..cycle.len() - 1]
                .iter()
                .filter_map(|n| models.iter().find(|m| &m.name == n))
                .map(|m| m.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ModelError::Cycle {
                cycle: cycle
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" -> "),
                files,
            });
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{ModelSettings, query_reads};
    use std::path::PathBuf;

    fn model(name: &str, sql: &str) -> Model {
        let (schema, table) = name.split_once('.').unwrap();
        Model {
            name: ModelName::new(schema, table),
            path: PathBuf::from(format!("sql/{schema}/{table}.sql")),
            sql: sql.to_string(),
            settings: ModelSettings::default(),
            reads: query_reads(sql).unwrap(),
            test_reads: Vec::new(),
            function_reads: Vec::new(),
        }
    }

    fn raw() -> BTreeSet<String> {
        ["orders".to_string()].into()
    }

    #[test]
    fn orders_dependencies_first() {
        let graph = ModelGraph::build(
            vec![
                model("marts.daily", "SELECT * FROM staging.orders"),
                model("staging.orders", "SELECT * FROM raw.orders"),
            ],
            &raw(),
        )
        .unwrap();
        let order: Vec<String> = graph.models.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(order, vec!["staging.orders", "marts.daily"]);
        let selected = graph.select(&["staging.orders+".to_string()]).unwrap();
        assert_eq!(selected.len(), 2);
        let selected = graph.select(&["daily".to_string()]).unwrap();
        assert_eq!(selected.len(), 1);
    }

    #[test]
    fn cycle_names_models_and_files() {
        let err = ModelGraph::build(
            vec![
                model("marts.a", "SELECT * FROM marts.b"),
                model("marts.b", "SELECT * FROM marts.a"),
            ],
            &raw(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("marts.a -> marts.b -> marts.a"), "{err}");
        assert!(err.contains("sql/marts/a.sql"), "{err}");
    }

    #[test]
    fn unknown_and_unqualified_tables_are_named() {
        let err = ModelGraph::build(vec![model("marts.a", "SELECT * FROM marts.nope")], &raw())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sql/marts/a.sql") && err.contains("marts.nope"),
            "{err}"
        );
        let err = ModelGraph::build(vec![model("staging.a", "SELECT * FROM orders")], &raw())
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean raw.orders"), "{err}");
        let err = ModelGraph::build(vec![model("marts.a", "SELECT * FROM raw.orders")], &raw())
            .unwrap_err()
            .to_string();
        assert!(err.contains("only staging models read raw"), "{err}");
    }
}
