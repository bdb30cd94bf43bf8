//! GetSqlInfo and GetXdbcTypeInfo: what JDBC (DBeaver, Tableau) and ODBC ask before anything else.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, SqlSupportsConvert, SupportedSqlGrammar, XdbcDataType,
    XdbcDatetimeSubcode,
};
use cdphub_lake::serve_config::ServerConfig;

const KEYWORDS: &[&str] = &[
    "ANALYZE",
    "ARRAY",
    "CASCADE",
    "DESCRIBE",
    "EXPLAIN",
    "FILTER",
    "FOLLOWING",
    "ILIKE",
    "LIMIT",
    "OFFSET",
    "PRECEDING",
    "QUALIFY",
    "RANGE",
    "SHOW",
    "STRUCT",
    "UNBOUNDED",
    "UNNEST",
    "WINDOW",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "cos", "degrees", "exp", "floor", "ln",
    "log", "log10", "log2", "mod", "pi", "power", "radians", "random", "round", "signum", "sin",
    "sqrt", "tan", "trunc",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "char_length",
    "chr",
    "concat",
    "concat_ws",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "md5",
    "octet_length",
    "regexp_replace",
    "repeat",
    "replace",
    "reverse",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "to_hex",
    "translate",
    "trim",
    "upper",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "datepart",
    "datetrunc",
    "extract",
    "from_unixtime",
    "make_date",
    "now",
    "to_char",
    "to_date",
    "to_timestamp",
    "to_unixtime",
];
const SYSTEM_FUNCTIONS: &[&str] = &["arrow_typeof", "coalesce", "nullif", "nvl", "version"];

/// A timeout as the int32 milliseconds of `FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT`. 0 would mean
/// "no timeout", which this server never has, so the value is at least 1; a timeout beyond
/// `i32::MAX` ms (about 24 days) is reported as that.
fn timeout_millis(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1)
}

/// What GetSqlInfo answers, built once per server from its config: the values that depend on
/// the config (the statement timeout) are the ones this server enforces.
pub fn sql_info(config: &ServerConfig) -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "cdphub");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    // The spec: "an int32 indicating the timeout (in milliseconds)"; `server.query-timeout`
    // bounds every execution of a statement or prepared statement, streaming included.
    b.append(
        SqlInfo::FlightSqlServerStatementTimeout,
        timeout_millis(config.query_timeout),
    );
    // No transactions (FlightSqlServerTransaction is None), hence no transaction timeout.
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlKeywords, KEYWORDS);
    b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    b.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    let mut convert: HashMap<i32, Vec<i32>> = HashMap::new();
    let numeric = [
        SqlSupportsConvert::SqlConvertBigint,
        SqlSupportsConvert::SqlConvertInteger,
        SqlSupportsConvert::SqlConvertSmallint,
        SqlSupportsConvert::SqlConvertTinyint,
        SqlSupportsConvert::SqlConvertDecimal,
        SqlSupportsConvert::SqlConvertFloat,
        SqlSupportsConvert::SqlConvertReal,
        SqlSupportsConvert::SqlConvertVarchar,
    ];
    for from in numeric {
        convert.insert(from as i32, numeric.iter().map(|t| *t as i32).collect());
    }
    b.append(SqlInfo::SqlSupportsConvert, &convert);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportedGroupBy, 3i32); // unrelated and beyond select
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(
        SqlInfo::SqlSupportedGrammar,
        (1 << SupportedSqlGrammar::SqlCoreGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlMinimumGrammar as i32),
    );
    b.append(SqlInfo::SqlAnsi92SupportedLevel, 0b11i32); // entry and intermediate
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    b.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32); // full outer joins
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    for (info, value) in [
        (SqlInfo::SqlMaxBinaryLiteralLength, 0i64),
        (SqlInfo::SqlMaxCharLiteralLength, 0),
        (SqlInfo::SqlMaxColumnNameLength, 1024),
        (SqlInfo::SqlMaxColumnsInGroupBy, 0),
        (SqlInfo::SqlMaxColumnsInIndex, 0),
        (SqlInfo::SqlMaxColumnsInOrderBy, 0),
        (SqlInfo::SqlMaxColumnsInSelect, 0),
        (SqlInfo::SqlMaxColumnsInTable, 0),
        (SqlInfo::SqlMaxConnections, 0),
        (SqlInfo::SqlMaxCursorNameLength, 0),
        (SqlInfo::SqlMaxIndexLength, 0),
        (SqlInfo::SqlDbSchemaNameLength, 1024),
        (SqlInfo::SqlMaxProcedureNameLength, 0),
        (SqlInfo::SqlMaxCatalogNameLength, 1024),
        (SqlInfo::SqlMaxRowSize, 0),
        (SqlInfo::SqlMaxStatementLength, 0),
        (SqlInfo::SqlMaxStatements, 0),
        (SqlInfo::SqlMaxTableNameLength, 1024),
        (SqlInfo::SqlMaxTablesInSelect, 0),
        (SqlInfo::SqlMaxUsernameLength, 1024),
    ] {
        b.append(info, value);
    }
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i32);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    b.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32); // forward only
    b.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified,
        0i32,
    );
    b.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly,
        0b10i32,
    );
    b.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive,
        0i32,
    );
    b.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive,
        0i32,
    );
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build().expect("SqlInfo data is valid")
}

fn type_info(
    name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    quoted: bool,
    radix: Option<i32>,
    subcode: Option<XdbcDatetimeSubcode>,
) -> XdbcTypeInfo {
    let sql_data_type = if subcode.is_some() {
        XdbcDataType::XdbcDatetime
    } else {
        data_type
    };
    XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        column_size,
        literal_prefix: quoted.then(|| "'".into()),
        literal_suffix: quoted.then(|| "'".into()),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: quoted,
        searchable: Searchable::Full,
        unsigned_attribute: radix.map(|_| false),
        fixed_prec_scale: false,
        auto_increment: radix.map(|_| false),
        local_type_name: Some(name.into()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type,
        datetime_subcode: subcode,
        num_prec_radix: radix,
        interval_precision: None,
    }
}

pub fn xdbc_type_info() -> &'static XdbcTypeInfoData {
    static DATA: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    DATA.get_or_init(|| {
        use XdbcDataType as T;
        let mut b = XdbcTypeInfoDataBuilder::new();
        for info in [
            type_info("BOOLEAN", T::XdbcBit, Some(1), false, None, None),
            type_info("TINYINT", T::XdbcTinyint, Some(3), false, Some(10), None),
            type_info("SMALLINT", T::XdbcSmallint, Some(5), false, Some(10), None),
            type_info("INTEGER", T::XdbcInteger, Some(10), false, Some(10), None),
            type_info("BIGINT", T::XdbcBigint, Some(19), false, Some(10), None),
            type_info("REAL", T::XdbcReal, Some(24), false, Some(2), None),
            type_info("DOUBLE", T::XdbcDouble, Some(53), false, Some(2), None),
            XdbcTypeInfo {
                create_params: Some(vec!["precision".into(), "scale".into()]),
                minimum_scale: Some(0),
                maximum_scale: Some(38),
                fixed_prec_scale: true,
                ..type_info("DECIMAL", T::XdbcDecimal, Some(38), false, Some(10), None)
            },
            type_info("VARCHAR", T::XdbcVarchar, Some(i32::MAX), true, None, None),
            type_info("BYTEA", T::XdbcVarbinary, Some(i32::MAX), true, None, None),
            type_info(
                "DATE",
                T::XdbcDate,
                Some(10),
                true,
                None,
                Some(XdbcDatetimeSubcode::XdbcSubcodeYear), // = XDBC_SUBCODE_DATE
            ),
            type_info(
                "TIME",
                T::XdbcTime,
                Some(15),
                true,
                None,
                Some(XdbcDatetimeSubcode::XdbcSubcodeTime),
            ),
            type_info(
                "TIMESTAMP",
                T::XdbcTimestamp,
                Some(26),
                true,
                None,
                Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            ),
        ] {
            b.append(info);
        }
        b.build().expect("static XDBC type info is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int32Array, UnionArray};

    fn int32_info(data: &SqlInfoData, info: SqlInfo) -> i32 {
        let batch = data.record_batch([info as u32]).unwrap();
        assert_eq!(batch.num_rows(), 1, "{info:?} is answered");
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<UnionArray>()
            .unwrap();
        let value = values.value(0);
        value
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap_or_else(|| panic!("{info:?} is an int32, got {:?}", value.data_type()))
            .value(0)
    }

    #[test]
    fn statement_timeout_is_the_configured_query_timeout_in_milliseconds() {
        for (timeout, millis) in [
            (Duration::from_secs(90), 90_000),
            (Duration::from_secs(300), 300_000),
            (Duration::from_millis(1500), 1_500),
            (Duration::from_micros(10), 1),
            (Duration::from_secs(60 * 24 * 3600), i32::MAX),
        ] {
            let config = ServerConfig {
                query_timeout: timeout,
                ..ServerConfig::default()
            };
            let data = sql_info(&config);
            assert_eq!(
                int32_info(&data, SqlInfo::FlightSqlServerStatementTimeout),
                millis,
                "{timeout:?}"
            );
            assert_eq!(
                int32_info(&data, SqlInfo::FlightSqlServerTransactionTimeout),
                0,
                "no transactions, no transaction timeout"
            );
        }
    }

    #[test]
    fn sql_info_answers_what_jdbc_asks_first() {
        let data = sql_info(&ServerConfig::default());
        let batch = data
            .record_batch([
                SqlInfo::FlightSqlServerName as u32,
                SqlInfo::SqlIdentifierQuoteChar as u32,
                SqlInfo::FlightSqlServerCancel as u32,
            ])
            .unwrap();
        assert_eq!(batch.num_rows(), 3);
        let all = data.record_batch(Vec::<u32>::new()).unwrap();
        assert!(all.num_rows() > 80, "{}", all.num_rows());
    }

    #[test]
    fn xdbc_types_filter_by_type() {
        let all = xdbc_type_info().record_batch(None).unwrap();
        assert_eq!(all.num_rows(), 13);
        let ints = xdbc_type_info()
            .record_batch(Some(XdbcDataType::XdbcBigint as i32))
            .unwrap();
        assert_eq!(ints.num_rows(), 1);
    }
}
