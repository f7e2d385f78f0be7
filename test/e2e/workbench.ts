import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { ROOT, waitFor } from '../helpers/gate.ts';

/**
 * A real VS Code for the end-to-end tests: code-server (VS Code 1.139 with a Node extension host)
 * installed by test/e2e/setup.sh, a packaged .vsix installed into it with its own CLI, and Debian's
 * Chromium driven by playwright-core, as a user would click and type.
 */
export const E2E_HOME = process.env.VSCODE_E2E_HOME ?? path.join(ROOT, '.e2e-cache');
const NODE24 = path.join(E2E_HOME, 'node24', 'node_modules', 'node', 'bin', 'node');
const CODE_SERVER = path.join(E2E_HOME, 'cs', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Settings that keep the window quiet and the same every run: no welcome page, chat, telemetry or update checks. */
const QUIET_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'chat.disableAIFeatures': true,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'git.enabled': false,
  'security.workspace.trust.enabled': false,
  'window.dialogStyle': 'custom',
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface CodeServer {
  base: string;
  logFile: string;
  userDataDir: string;
  extensionsDir: string;
  /** The workbench URL for a folder. */
  url(folder: string): string;
  stop(): Promise<void>;
}

/**
 * Installs the .vsix with code-server's own `--install-extension` into a fresh extensions folder, then
 * starts code-server on 127.0.0.1 under `timeout`, so that it cannot outlive the test run.
 */
export async function startCodeServer(options: { runDir: string; vsix: string; settings: Record<string, unknown>; timeoutS: number }): Promise<CodeServer> {
  if (!fs.existsSync(CODE_SERVER)) throw new Error(`code-server is not installed under ${E2E_HOME}: run test/e2e/setup.sh`);
  const userDataDir = path.join(options.runDir, 'user-data');
  const extensionsDir = path.join(options.runDir, 'extensions');
  const config = path.join(options.runDir, 'code-server.yaml');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({ ...QUIET_SETTINGS, ...options.settings }, null, 2));
  const common = ['--config', config, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  const env = { ...process.env, PATH: `${path.dirname(NODE24)}:${process.env.PATH}` };
  execFileSync(NODE24, [CODE_SERVER, ...common, '--install-extension', options.vsix, '--force'], { env, stdio: 'pipe', timeout: 120_000 });

  const port = await freePort();
  const logFile = path.join(options.runDir, 'code-server.log');
  const log = fs.openSync(logFile, 'a');
  const child = spawn(
    'timeout',
    ['--kill-after=10', String(options.timeoutS), NODE24, CODE_SERVER, ...common, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override'],
    { stdio: ['ignore', log, log], env },
  );
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor('code-server to answer /healthz', async () => ((await fetch(`${base}/healthz`).catch(() => undefined))?.ok ? true : undefined), 60_000);
  return {
    base,
    logFile,
    userDataDir,
    extensionsDir,
    url: (folder) => `${base}/?${new URLSearchParams({ folder })}`,
    async stop() {
      // `timeout` passes the signal to its process group: server, extension host, daemon, gate.
      child.kill('SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(resolve, 15_000, false))]);
      if (!stopped) child.kill('SIGKILL');
    },
  };
}

/** Opens the workbench in headless Chromium and waits until it is restored. */
export async function openWorkbench(url: string, consoleLog: string): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (message) => fs.appendFileSync(consoleLog, `[${message.type()}] ${message.text()}\n`));
  page.setDefaultTimeout(30_000);
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 90_000 });
  await page.locator('.monaco-workbench .part.sidebar .pane-header').first().waitFor({ timeout: 90_000 });
  return { browser, page };
}

/**
 * Runs a command from the palette as a user does: F1, its label, Enter. The palette lists the
 * commands known when it opens; in a window that has just loaded, the extensions' commands may
 * arrive a moment later, so, like a user, it closes the palette and opens it again.
 */
export async function runCommand(page: Page, label: string): Promise<void> {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const focused = page.locator('.quick-input-list .monaco-list-row.focused');
  const listed = async () => ((await focused.count()) > 0 && (await focused.first().innerText()).includes(label) ? true : undefined);
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible' });
    await page.keyboard.type(label, { delay: 5 });
    try {
      await waitFor(`"${label}" in the palette`, listed, 5_000);
      break;
    } catch (error) {
      if (attempt === 3) throw error;
      await page.keyboard.press('Escape');
      await input.waitFor({ state: 'hidden' });
    }
  }
  await page.keyboard.press('Enter');
}

/** The quick pick or input box that is open now. */
export function quickInput(page: Page): { input: Locator; rows: Locator; message: Locator } {
  const widget = page.locator('.quick-input-widget');
  return { input: widget.locator('.quick-input-box input'), rows: widget.locator('.quick-input-list .monaco-list-row'), message: widget.locator('.quick-input-message') };
}

/** Picks the quick pick row that contains `text` (and not `unless`); a timeout names the rows there were. */
export async function pickRow(page: Page, text: string | RegExp, unless?: string): Promise<void> {
  const { rows } = quickInput(page);
  const row = rows.filter({ hasText: text, ...(unless === undefined ? {} : { hasNotText: unless }) }).first();
  try {
    await row.waitFor({ state: 'visible', timeout: 15_000 });
  } catch {
    throw new Error(`no quick pick row with ${String(text)}; the rows: ${JSON.stringify(await rowTexts(page.locator('.quick-input-list')))}`);
  }
  await row.click();
}

/** The text of a notification toast that contains `text`, once it shows. */
export async function notification(page: Page, text: string | RegExp, timeoutMs = 30_000): Promise<string> {
  const toast = page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  await toast.waitFor({ state: 'visible', timeout: timeoutMs });
  return (await toast.innerText()).replace(/\s+/g, ' ').trim();
}

/** The texts of the rows of a tree or list. */
export async function rowTexts(scope: Locator): Promise<string[]> {
  return (await scope.locator('.monaco-list-row').allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
}
