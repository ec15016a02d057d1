// Runs the browser tests against `docker compose up` of the real docker-compose.yml (docker
// runtime); everything is removed afterwards, the containers the gateway started included.
import { startComposeApp } from '@platform/test-services';

export default async function composeSetup(): Promise<() => Promise<void>> {
  const app = await startComposeApp({ project: `voting-e2e-${process.pid}` });
  process.env.VOTE_URL = app.voteUrl;
  process.env.RESULT_URL = app.resultUrl;
  try {
    // The browser test times a vote until the result page shows it (2 s), not three container
    // cold starts in a row: each function gets a warm container first, as a presenter would
    // before a workshop (cold starts are the bench's `cold-start-docker`).
    for (const fn of ['vote', 'record-vote', 'results']) {
      const scaled = await fetch(`${app.voteUrl}/system/scale-function/${fn}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${app.adminToken}` },
        body: JSON.stringify({ replicas: 1 }),
      });
      if (scaled.status !== 200) throw new Error(`scaling ${fn} to 1 answered ${scaled.status}: ${await scaled.text()}`);
    }
  } catch (error) {
    await app.stop();
    throw error;
  }
  return () => app.stop();
}
