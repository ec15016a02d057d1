export { runBench, scenarioIds, type BenchOptions, type ScenarioId } from './run.js';
export { renderMarkdown, renderSvg, renderTable, tableRows, writeReport, resultFileName, formatValue } from './report.js';
export { startApp, residentMb, childProcesses, repoRoot, type RunningApp } from './app.js';
export { met, type BenchRun, type Metric, type ScenarioResult } from './types.js';
