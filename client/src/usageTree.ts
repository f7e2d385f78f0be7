import * as vscode from 'vscode';
import type { Paygate } from './paygate.ts';
import { panelNodes, type PanelNode } from './usageModel.ts';

/** The usage panel: refreshed from the daemon's `paygate/usageChanged` snapshots, never by polling. */
class UsageTree implements vscode.TreeDataProvider<PanelNode> {
  readonly #changed = new vscode.EventEmitter<undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  #roots: PanelNode[];
  #shown: string;

  constructor(paygate: Paygate) {
    this.#roots = panelNodes(paygate.snapshot);
    this.#shown = JSON.stringify(this.#roots);
    paygate.onDidChangeSnapshot((snapshot) => {
      const roots = panelNodes(snapshot);
      const shown = JSON.stringify(roots);
      // VS Code delays a redraw that follows another within 200 ms: spend none on snapshots that change nothing here.
      if (shown === this.#shown) return;
      this.#roots = roots;
      this.#shown = shown;
      this.#changed.fire(undefined);
    });
  }

  getChildren(node?: PanelNode): PanelNode[] {
    return node ? (node.children ?? []) : this.#roots;
  }

  getTreeItem(node: PanelNode): vscode.TreeItem {
    const state = node.children === undefined
      ? vscode.TreeItemCollapsibleState.None
      : node.collapsed ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.Expanded;
    const item = new vscode.TreeItem(node.label, state);
    item.id = node.id;
    item.iconPath = new vscode.ThemeIcon(node.icon);
    if (node.description !== undefined) item.description = node.description;
    if (node.tooltip !== undefined) item.tooltip = new vscode.MarkdownString(node.tooltip);
    if (node.contextValue !== undefined) item.contextValue = node.contextValue;
    return item;
  }

  dispose(): void {
    this.#changed.dispose();
  }
}

export function registerUsageTree(paygate: Paygate): vscode.Disposable {
  const tree = new UsageTree(paygate);
  return vscode.Disposable.from(tree, vscode.window.createTreeView('paygate.usage', { treeDataProvider: tree, showCollapseAll: true }));
}
