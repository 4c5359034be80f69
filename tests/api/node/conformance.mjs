// All nine Coze voiceprint endpoints through the official Node SDK (@coze/api), against the
// server at VOICEPRINT_URL with VOICEPRINT_TOKEN. Recordings: ENROL_A, ENROL_B, PROBE_A (WAV).
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import assert from "node:assert/strict";
import fs from "node:fs";
import { CozeAPI } from "@coze/api";

const client = new CozeAPI({ token: process.env.VOICEPRINT_TOKEN, baseURL: process.env.VOICEPRINT_URL });
const groups = client.audio.voiceprintGroups;
const features = groups.features;
const audio = (name) => fs.createReadStream(process.env[name]);

const group = await groups.create({ name: "node family", desc: "from @coze/api" });
assert.match(group.id, /^[1-9][0-9]*$/);

const listed = await groups.list({ page_num: 1, page_size: 10, group_id: group.id });
assert.equal(listed.total, 1);
assert.equal(listed.items[0].name, "node family");
assert.equal(listed.items[0].feature_count, 0);

await groups.update(group.id, { name: "node renamed", desc: "changed" });
const renamed = await groups.list({ group_id: group.id });
assert.equal(renamed.items[0].name, "node renamed");
assert.equal(renamed.items[0].desc, "changed");

const alice = await features.create(group.id, { name: "alice", desc: "first", file: audio("ENROL_A") });
const bob = await features.create(group.id, { name: "bob", file: audio("ENROL_B") });
assert.notEqual(alice.id, bob.id);

const voiceprints = await features.list(group.id, { page_num: 1, page_size: 10 });
assert.equal(voiceprints.total, 2);
assert.deepEqual(new Set(voiceprints.items.map((f) => f.name)), new Set(["alice", "bob"]));
assert.ok(voiceprints.items.every((f) => f.audio_url.includes("signature=")));

const identified = await features.speakerIdentify(group.id, { file: audio("PROBE_A"), top_k: 2 });
assert.equal(identified.feature_score_list.length, 2);
assert.equal(identified.feature_score_list[0].feature_id, alice.id);
assert.ok(identified.feature_score_list[0].score >= 50);
assert.ok(identified.feature_score_list[1].score < 50);

await features.update(group.id, bob.id, { name: "robert" });
await features.update(group.id, alice.id, { file: audio("ENROL_A"), desc: "new audio" });
const updated = await features.list(group.id);
assert.deepEqual(new Set(updated.items.map((f) => f.name)), new Set(["alice", "robert"]));

await features.delete(group.id, bob.id);
assert.equal((await features.list(group.id)).total, 1);

let missing;
try {
  await features.delete(group.id, bob.id);
} catch (error) {
  missing = error;
}
assert.ok(missing, "deleting twice must fail");
assert.equal(missing.code, 4200);

await groups.delete(group.id);
assert.equal((await groups.list({ group_id: group.id })).total, 0);

console.log(JSON.stringify({ ok: true, group: group.id, best: identified.feature_score_list[0] }));
