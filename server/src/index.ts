/** paygate-mcp as a library. */
export { Gate, type CallInput, type DenyReason, type GateOptions, type KeyFields, type QuotaLimits, type ToolPolicy, type Verdict } from './api/gate.ts';
