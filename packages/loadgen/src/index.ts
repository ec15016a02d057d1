export { runSeed, formatSummary, voterCookie, type SeedOptions, type SeedSummary, type SeedProgress, type SeedMode } from './seed.js';
export { LatencyRecorder, summarize, round, parseRatio, parseVoters, choiceAt, type LatencySummary, type VoterPolicy } from './stats.js';
