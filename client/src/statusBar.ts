import * as vscode from 'vscode';
import type { Paygate } from './paygate.ts';
import { statusBarView } from './usageModel.ts';

const BACKGROUND = { normal: undefined, warning: 'statusBarItem.warningBackground', error: 'statusBarItem.errorBackground' } as const;

/** The status bar item: the gate's state, port and calls per minute, as the daemon reports them. Click opens the panel. */
export function registerStatusBar(paygate: Paygate): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('paygate.status', vscode.StatusBarAlignment.Left, 10);
  item.name = 'PayGate';
  item.command = 'paygate.showPanel';
  const show = () => {
    const view = statusBarView(paygate.snapshot);
    item.text = view.text;
    item.tooltip = view.tooltip;
    const background = BACKGROUND[view.severity];
    item.backgroundColor = background === undefined ? undefined : new vscode.ThemeColor(background);
  };
  show();
  item.show();
  return vscode.Disposable.from(item, paygate.onDidChangeSnapshot(show));
}
