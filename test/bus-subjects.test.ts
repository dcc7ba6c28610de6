import { describe, expect, it } from 'vitest';
import { subjectMatches } from '../src/transport/match.ts';
import { InvalidSubjectTokenError, subjectPatterns, subjects } from '../src/transport/subjects.ts';

describe('subjects', () => {
  it('names every per-stream, per-worker and per-node subject', () => {
    expect(subjects.streamCmd('abc')).toBe('sf.stream.abc.cmd');
    expect(subjects.streamEvt('abc')).toBe('sf.stream.abc.evt');
    expect(subjects.procCmd('abc_1')).toBe('sf.proc.abc_1.cmd');
    expect(subjects.workerHb('abc', 'w1')).toBe('sf.stream.abc.worker.w1.hb');
    expect(subjects.inspect('node-1')).toBe('sf.inspect.node-1');
  });

  it('subscriber patterns match the subjects they are for, and nothing else', () => {
    expect(subjectMatches(subjectPatterns.allNodeStreams, subjects.nodeStreams('node-a'))).toBe(true);
    expect(subjectMatches(subjectPatterns.allNodeStreams, subjects.nodeCmd('node-a'))).toBe(false);
    expect(subjectMatches(subjectPatterns.allThumbnails, subjects.streamThumb('a', 'input'))).toBe(true);
    expect(subjectMatches(subjectPatterns.allThumbnails, subjects.workerHb('a', 3))).toBe(false);
  });

  it.each(['', 'a.b', 'a*', '>', 'a b', 'tab\there', 'nl\n'])('rejects the unsafe id %j with InvalidSubjectTokenError', (id) => {
    expect(() => subjects.streamCmd(id)).toThrow(InvalidSubjectTokenError);
    try {
      subjects.inspect(id);
    } catch (e) {
      expect((e as InvalidSubjectTokenError).code).toBe('BUS_INVALID_SUBJECT');
    }
    expect(() => subjects.procCmd(id)).toThrow(InvalidSubjectTokenError);
  });
});
