// Reads {statements: [{name, cypher, schema}]} as JSON on stdin and writes, as JSON on
// stdout, every diagnostic (error or warning) Neo4j's Cypher front end reports for
// each statement, linted against its own schema (labels, relationship types, property
// keys, and the parameters it declares).
import { lintCypherQuery } from '@neo4j-cypher/language-support';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { statements } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
// Neo4j 5 runs Cypher 5; Neo4j 2025+ runs Cypher 5 by default and Cypher 25 when asked:
// a statement must pass both.
const versions = ['CYPHER 5', 'CYPHER 25'];
const results = statements.map(({ name, cypher, schema }) => ({
  name,
  diagnostics: versions.flatMap((version) =>
    lintCypherQuery(cypher, { ...schema, defaultLanguage: version }).diagnostics.map((d) => ({
      version,
      severity: d.severity === 1 ? 'error' : 'warning',
      message: d.message,
      offset: d.offsets ? d.offsets.start : null,
    })),
  ),
}));
process.stdout.write(JSON.stringify({ results }));
