// Pushes log lines to a Loki push URL with winston-loki (protobuf+snappy, or JSON with
// structured metadata), for ci/interop/test_loki_push_clients.py. Prints one JSON line:
// {"contentType": ..., "errors": [...]}; exits 1 when a push failed.
//
// usage: node winston_push.js HOST JSON|PROTOBUF LABELS_JSON LINE...
'use strict'
const { createLogger } = require('winston')
const LokiTransport = require('winston-loki')

async function main () {
  const [host, mode, labelsJson, ...lines] = process.argv.slice(2)
  const errors = []
  const transport = new LokiTransport({
    host,
    json: mode === 'JSON',
    labels: JSON.parse(labelsJson),
    batching: true,
    interval: 0.2,
    timeout: 5000,
    gracefulShutdown: false,
    onConnectionError: err => errors.push(String(err && err.message ? err.message : err))
  })
  const logger = createLogger({ transports: [transport] })
  lines.forEach((line, i) => logger.info(line, { seq: String(i) }))
  // winston hands entries to the transport asynchronously: let them reach the batch first.
  await new Promise(resolve => setImmediate(resolve))
  await transport.flush()
  await transport.close()
  process.stdout.write(JSON.stringify({ contentType: transport.batcher.contentType, errors }) + '\n')
  process.exit(errors.length ? 1 : 0)
}

main().catch(err => {
  process.stdout.write(JSON.stringify({ errors: [String(err)] }) + '\n')
  process.exit(1)
})
