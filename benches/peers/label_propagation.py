"""Connected components by iterative SQL label propagation on DuckDB: the method SQL-based
identity tools use. Every node starts with its own label and takes the smallest label of
its neighbours until nothing changes.

Usage: label_propagation.py <edges.parquet>   (columns id_type, id_value, linked_type, linked_value)
Prints one JSON object: seconds, iterations, nodes, edges, components.
"""

import json
import sys
import time

import duckdb


def main(edges_path: str) -> None:
    con = duckdb.connect()
    started = time.perf_counter()
    # Dense integer node ids first, as a careful SQL implementation would do.
    con.execute(
        """
        CREATE TABLE raw_edges AS
        SELECT id_type || ':' || id_value AS a, linked_type || ':' || linked_value AS b
        FROM read_parquet(?)
        """,
        [edges_path],
    )
    con.execute(
        """
        CREATE TABLE nodes AS
        SELECT name, row_number() OVER (ORDER BY name) AS id
        FROM (SELECT a AS name FROM raw_edges UNION SELECT b FROM raw_edges)
        """
    )
    con.execute(
        """
        CREATE TABLE edges AS
        SELECT na.id AS src, nb.id AS dst
        FROM raw_edges JOIN nodes na ON na.name = raw_edges.a JOIN nodes nb ON nb.name = raw_edges.b
        WHERE na.id <> nb.id
        UNION
        SELECT nb.id, na.id
        FROM raw_edges JOIN nodes na ON na.name = raw_edges.a JOIN nodes nb ON nb.name = raw_edges.b
        WHERE na.id <> nb.id
        """
    )
    con.execute("CREATE TABLE labels AS SELECT id AS node, id AS label FROM nodes")
    iterations = 0
    while True:
        iterations += 1
        con.execute(
            """
            CREATE OR REPLACE TABLE next_labels AS
            SELECT l.node, least(l.label, coalesce(min(n.label), l.label)) AS label
            FROM labels l
            LEFT JOIN edges e ON e.src = l.node
            LEFT JOIN labels n ON n.node = e.dst
            GROUP BY l.node, l.label
            """
        )
        changed = con.execute(
            """
            SELECT count(*) FROM next_labels nl JOIN labels l USING (node)
            WHERE nl.label <> l.label
            """
        ).fetchone()[0]
        con.execute("DROP TABLE labels")
        con.execute("ALTER TABLE next_labels RENAME TO labels")
        if changed == 0:
            break
    components = con.execute("SELECT count(DISTINCT label) FROM labels").fetchone()[0]
    seconds = time.perf_counter() - started
    nodes = con.execute("SELECT count(*) FROM nodes").fetchone()[0]
    edges = con.execute("SELECT count(*) FROM edges").fetchone()[0] // 2
    print(
        json.dumps(
            {
                "seconds": seconds,
                "iterations": iterations,
                "nodes": nodes,
                "edges": edges,
                "components": components,
                "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
