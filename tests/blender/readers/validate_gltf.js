// node validate_gltf.js <gltf-validator module folder> <file.glb>: prints the validator's JSON report.
const fs = require('fs');
const validator = require(process.argv[2]);
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[3])), {maxIssues: 1000})
  .then((report) => { console.log(JSON.stringify(report)); })
  .catch((error) => { console.error(String(error)); process.exit(2); });
