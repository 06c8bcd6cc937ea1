import { expect } from 'chai';
import { forClients, fromSerialized, toToolhostError } from '../lib/errors.js';

describe('errors: what a job view shows of a failure', () => {
  it('keeps only the code and where to look of an internal error, whose message may name server paths', () => {
    const e = forClients(
      { code: 'internal', message: "internal error: EACCES: permission denied, mkdir '/srv/toolhost/data/homes/p'" },
      '/srv/toolhost/data',
      'job id j1',
    );
    expect(e.code).to.equal('internal');
    expect(e.message).to.not.include('/srv');
    expect(e.message).to.include('job id j1');
  });

  it('replaces the data dir in any other message, and leaves the rest alone', () => {
    const e = forClients(
      { code: 'file_not_found', message: 'cwd /srv/toolhost/data/projects/p/x does not exist', details: { path: 'x' } },
      '/srv/toolhost/data/',
      'job id j2',
    );
    expect(e).to.deep.equal({ code: 'file_not_found', message: 'cwd <dataDir>/projects/p/x does not exist', details: { path: 'x' } });
  });

  it('takes only codes of its own from a serialized error: an inherited name such as "constructor" is internal', () => {
    for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const e = fromSerialized({ code: code as never, message: 'forged' });
      expect(e.code, code).to.equal('internal');
      expect(e.status, code).to.equal(500);
      expect(toToolhostError({ code, message: 'forged' }).code, code).to.equal('internal');
    }
    expect(fromSerialized({ code: 'file_not_found', message: 'gone' }).status).to.equal(404);
  });
});
