// run.mjs runs the named scenarios (all when none is named) against the
// servers in PARLEY_HS1_URL / PARLEY_HS2_URL and exits non-zero on the
// first failure. interop_test.go runs one scenario per process.
import { scenarios } from "./scenarios.mjs";
import { log, missingEndpoints } from "./lib.mjs";

const names = process.argv.slice(2);
if (names.length === 0) names.push(...Object.keys(scenarios));
if (names[0] === "--list") {
    process.stdout.write(Object.keys(scenarios).join("\n") + "\n");
    process.exit(0);
}

let failed = false;
for (const name of names) {
    const fn = scenarios[name];
    if (!fn) {
        console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}`);
        process.exit(2);
    }
    const start = Date.now();
    try {
        await fn();
        log(`PASS ${name} (${Date.now() - start} ms)`);
    } catch (err) {
        failed = true;
        log(`FAIL ${name} (${Date.now() - start} ms): ${err?.stack || err}`);
        break;
    }
}
if (missingEndpoints.size > 0) log(`the server lacks (answered in the client instead): ${[...missingEndpoints].join(", ")}`);
// The sdk keeps timers and requests alive after stopClient; do not wait for them.
process.exit(failed ? 1 : 0);
