import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseRuntime } from '../../client/src/runtime.ts';

test('the daemon runs on the editor\'s Node when it has node:sqlite, with nothing to say', () => {
  assert.deepEqual(chooseRuntime('', '22.15.0', true), { runtime: undefined, warning: undefined });
});

test('a Node without node:sqlite is named, with the setting that fixes it', () => {
  const old = chooseRuntime('', '20.19.1', false);
  assert.equal(old.runtime, undefined);
  assert.match(old.warning!, /this editor's Node \(20\.19\.1\) is older than 22\.13\.0, without node:sqlite/);
  assert.match(old.warning!, /"paygate\.server\.runtime"/);
  assert.match(chooseRuntime('', '22.14.0', false).warning!, /is without node:sqlite/);
});

test('paygate.server.runtime wins whatever the editor has', () => {
  assert.deepEqual(chooseRuntime('  /opt/node24/bin/node ', '20.19.1', false), { runtime: '/opt/node24/bin/node', warning: undefined });
});
