import { isOptionKey, type OptionKey } from './api';

// The last choice, so that a reload still shows it; the server keeps the real vote.
const KEY = 'vote';

export function readStoredVote(): OptionKey | null {
  try {
    const value = window.localStorage.getItem(KEY);
    return isOptionKey(value) ? value : null;
  } catch {
    return null;
  }
}

export function storeVote(vote: OptionKey): void {
  try {
    window.localStorage.setItem(KEY, vote);
  } catch {
    // Storage can be unavailable (private mode, quota); the vote itself still counts.
  }
}
