// The shell helpers compose.sh, stack.sh and the image scripts use, run as on macOS: BSD's stat,
// no GNU timeout, Docker Desktop's engine in a VM. Fake commands on the PATH stand for those.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const scripts = join(import.meta.dirname, '..', '..', '..', 'infra', 'scripts');
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A folder of commands: fakes (name → sh script) and links to the real ones named. */
function commands(fakes: Record<string, string>, real: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'voting-commands-'));
  made.push(dir);
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  for (const name of real) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(found, join(dir, name));
  }
  return dir;
}

/** BSD's stat as macOS has it: no --version, no -c; `-f FORMAT`. Its answer for %g is 20 (staff). */
const bsdStat = `case "$1" in --version | -c) echo "stat: illegal option -- \${1#-}" >&2; exit 1 ;; esac
[ "$1" = -L ] && shift
[ "$1" = -f ] && [ "$2" = %g ] || { echo "usage: stat [-FLnq] [-f format | -l | -r | -s | -x] file" >&2; exit 1; }
[ -e "$3" ] || { echo "stat: $3: stat: No such file or directory" >&2; exit 1; }
echo 20`;
/** docker, answering `docker info --format '{{.OperatingSystem}}'` with $ENGINE_OS. */
const docker = `[ "$1" = info ] && { echo "$ENGINE_OS"; exit 0; }
[ "$1" = pull ] && exec sleep 30
exit 1`;
const uname = 'echo "$MACHINE"';

/** Runs `script` in bash with a helper file sourced, the given commands first on the PATH. */
function run(helper: string, script: string, path: string, env: Record<string, string> = {}) {
  const bash = spawnSync('sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).stdout.trim();
  const started = Date.now();
  // stdin not a socket, and --norc: bash would read ~/.bashrc, thinking itself started by sshd.
  const result = spawnSync(bash, ['--norc', '--noprofile', '-c', `set -euo pipefail; source ${join(scripts, helper)}; ${script}`], {
    encoding: 'utf8',
    env: { PATH: path, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { ...result, stdout: result.stdout.trim(), stderr: result.stderr.trim(), ms: Date.now() - started };
}

const systemPath = process.env.PATH ?? '/usr/bin:/bin';

describe("the Docker socket's group (docker-socket.sh)", () => {
  const socket = join(mkdtempSync(join(tmpdir(), 'voting-socket-')), 'docker.sock');
  made.push(join(socket, '..'));
  writeFileSync(socket, '');

  // Break it catches: GNU's `stat -c %g` alone (macOS's stat has no -c: compose.sh and stack.sh stop).
  it("reads a file's group with GNU's stat and with BSD's", () => {
    expect(run('docker-socket.sh', `file_gid ${socket}`, systemPath).stdout).toBe(String(statSync(socket).gid));
    const bsd = commands({ stat: bsdStat });
    expect(run('docker-socket.sh', `file_gid ${socket}`, `${bsd}:${systemPath}`)).toMatchObject({ status: 0, stdout: '20' });
  });

  // Break it catches: the group of the file on this machine used for Docker Desktop, whose engine
  // (in its VM) has the socket as root's: the controller, in that group, is refused by the engine.
  it("is 0 with Docker Desktop, the socket file's group with an engine of this Linux machine, DOCKER_GID when set", () => {
    const mac = commands({ stat: bsdStat, docker, uname });
    const onMac = { ENGINE_OS: 'Docker Desktop', MACHINE: 'Darwin' };
    expect(run('docker-socket.sh', 'docker_socket_gid /var/run/no-such.sock', `${mac}:${systemPath}`, onMac)).toMatchObject({ status: 0, stdout: '0' });
    expect(run('docker-socket.sh', `docker_socket_gid ${socket}`, `${mac}:${systemPath}`, onMac)).toMatchObject({ status: 0, stdout: '0' });

    const linux = commands({ docker, uname });
    const onLinux = { ENGINE_OS: 'Debian GNU/Linux 12 (bookworm)', MACHINE: 'Linux' };
    expect(run('docker-socket.sh', `docker_socket_gid ${socket}`, `${linux}:${systemPath}`, onLinux)).toMatchObject({
      status: 0,
      stdout: String(statSync(socket).gid),
    });
    expect(run('docker-socket.sh', `docker_socket_gid ${socket}`, `${mac}:${systemPath}`, { ...onMac, DOCKER_GID: '998' }).stdout).toBe('998');
  });

  // Break it catches: a group guessed for an engine it cannot see (or stat's own error message).
  it('says what to set when it cannot know', () => {
    const mac = commands({ stat: bsdStat, docker, uname });
    const colima = run('docker-socket.sh', `docker_socket_gid ${socket}`, `${mac}:${systemPath}`, { ENGINE_OS: 'Ubuntu 24.04.1 LTS', MACHINE: 'Darwin' });
    expect(colima.status).toBe(1);
    expect(colima.stderr).toBe('✖ the Docker Engine runs in a VM, not on this Darwin machine: set DOCKER_GID to the group of /var/run/docker.sock inside it');

    const linux = commands({ docker, uname });
    const missing = run('docker-socket.sh', 'docker_socket_gid /var/run/no-such.sock', `${linux}:${systemPath}`, {
      ENGINE_OS: 'Debian GNU/Linux 12',
      MACHINE: 'Linux',
    });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe("✖ no Docker socket at /var/run/no-such.sock: set DOCKER_SOCKET to the engine's socket, or DOCKER_GID to its group");
  });
});

describe('the image scripts on macOS (rootfs.sh)', () => {
  // Break it catches: GNU's `timeout` called where there is none (the pull "fails" at once, and a
  // stand-in is made of the host's programs), or a pull never given up.
  it('give up a pull that does not answer, without GNU timeout', () => {
    const noTimeout = commands({ docker }, ['perl', 'sleep']);
    const pull = run('rootfs.sh', 'command -v timeout || true; pull_within 1 postgres:16-alpine', noTimeout);
    expect(pull.stdout).toBe(''); // no timeout on this PATH
    expect(pull.status).not.toBe(0);
    expect(pull.status).not.toBe(127); // ran, and was stopped
    expect(pull.ms).toBeGreaterThanOrEqual(900);
    expect(pull.ms).toBeLessThan(10_000);
  });

  // Break it catches: a stand-in made on macOS of its own (Mach-O) programs, which no Linux container runs.
  it('make no stand-in image outside Linux, and say what to do', () => {
    const mac = commands({ uname });
    const refused = run('rootfs.sh', 'standin_needs_linux postgres:16-alpine; echo made', `${mac}:${systemPath}`, { MACHINE: 'Darwin' });
    expect(refused).toMatchObject({
      status: 1,
      stdout: '',
      stderr:
        '✖ no registry answers for postgres:16-alpine, and a stand-in image can only be made on Linux: let Docker reach a registry (or docker load the image), then run again',
    });
    expect(run('rootfs.sh', 'standin_needs_linux postgres:16-alpine; echo made', `${mac}:${systemPath}`, { MACHINE: 'Linux' }).stdout).toBe('made');
  });
});
