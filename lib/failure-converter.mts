/**
 * Lifeboat's failure converter: a failure's message and stack trace travel in
 * its `encodedAttributes` payload (the message field says only "Encoded
 * failure"), so the payload codec encrypts them like any other payload: no
 * rejection reason or database error is readable on the Temporal server.
 *
 * Loaded by path (`failureConverterPath`) by clients, workers and the workflow
 * bundle alike, hence an ES module without type annotations: Node's
 * `require()` loads it from source (type stripping) and from dist/, and webpack
 * bundles it into the workflow sandbox as plain JavaScript.
 */
// A named import: Node finds it in the CommonJS package's exports, and webpack honours the package's __esModule marker.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
