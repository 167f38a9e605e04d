// The query parser, ported from src/metamedia/search/parser.py: the rules and tables come from
// parser-tables.json (generated from the Python source), so only the scanning and the interpreters
// live here. tests/data/golden_queries.json is checked against both parsers.

const FREE = 0, KEPT = 1, CONSUMED = 2;

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function makeParser(tables) {
  const compile = (r) => ({ ...r, re: new RegExp(r.pattern, "g" + r.flags) });
  const rules = tables.rules.map(compile);
  const baseRules = rules.slice(0, tables.base_rule_count);
  const genreRules = tables.genre_rules.map(compile);
  const anchorParts = new RegExp("^(?:" + tables.anchor_parts + ")$", "i");
  const descriptionStart = new RegExp("^(?:" + tables.description_start + ")", "i");
  const edge = new Set(tables.edge_words);
  const sameLength = tables.same_length;

  const hit = (start, end, effect, keep = null) => ({ start, end, effect, keep });
  const group = (m, name) => (m.groups && m.groups[name] !== undefined ? m.groups[name] : null);
  const groupStart = (m, name) => m.indices.groups[name][0];
  const groupEnd = (m, name) => m.indices.groups[name][1];

  function anchorYears(text) {
    const m = anchorParts.exec(text.trim());
    if (!m) throw new Error("not a year or decade: " + text);
    let start;
    if (m.groups.word) {
      start = tables.decade_words[m.groups.word.toLowerCase().replace(/[\s-]+/g, " ")];
    } else {
      const digits = m.groups.digits.replace(/^'+/, "");
      if (!m.groups.s) return [Number(digits), Number(digits)];
      start = digits.length === 4 ? Number(digits) : (Number(digits) >= 20 ? 1900 : 2000) + Number(digits);
    }
    const part = (m.groups.part || "").toLowerCase();
    const offsets = { early: [0, 3], mid: [3, 6], late: [6, 9] }[part] || [0, 9];
    return [start + offsets[0], start + offsets[1]];
  }

  const count = (word) => (/^[0-9]+$/.test(word) ? Number(word) : tables.number_words[word.toLowerCase().replace(/\s+/g, " ")]);
  const bound = (lo = null, hi = null, soft = false, span = false) => ({ lo, hi, soft, span });

  function relative(spec, m, year) {
    const side = (f) => (f === null ? null : f[0] === "offset" ? year + f[1] : f[0] === "decade" ? Math.floor(year / 10) * 10 : year - count(group(m, "n")));
    return bound(side(spec.lo), side(spec.hi), spec.soft, spec.span);
  }

  function durationMinutes(m) {
    if (group(m, "mins")) return Number(group(m, "mins"));
    const c = group(m, "count").toLowerCase();
    let hours = c.startsWith("half") ? 0.5 : /^[0-9]/.test(c) ? Number(c) : tables.number_words[c];
    hours += group(m, "half1") || group(m, "half2") ? 0.5 : 0;
    return hours * 60 + Number(group(m, "hmin") || 0);
  }

  const interpreters = {
    static: (r, m) => hit(m.index, m.index + m[0].length, r.effect, r.keep ? [m.index, m.index + m[0].length] : null),
    relative: (r, m, today) => hit(m.index, m.index + m[0].length, { year: relative(r.year, m, today.getFullYear()) }),
    year_phrase: (r, m) => {
      const [lo, hi] = anchorYears(group(m, "a"));
      let b;
      if (group(m, "later") || group(m, "since")) b = bound(lo);
      else if (group(m, "earlier") || group(m, "until")) b = bound(null, hi);
      else if (group(m, "before")) b = bound(null, lo - 1);
      else if (group(m, "after")) b = bound(hi + 1);
      else if (group(m, "around")) b = bound(lo - 2, hi + 2, false, true);
      else b = bound(lo, hi, false, true);
      return hit(m.index, m.index + m[0].length, { year: b });
    },
    year_range: (r, m) => {
      const [lo, hi] = anchorYears(group(m, "a"));
      let end;
      if (group(m, "b2")) {
        end = Math.floor(lo / 100) * 100 + Number(group(m, "b2"));
        if (end < lo) end += 100;
      } else end = anchorYears(group(m, "b"))[1];
      return hit(m.index, m.index + m[0].length, { year: bound(Math.min(lo, end), Math.max(hi, end), false, true) });
    },
    runtime: (r, m) => {
      const minutes = durationMinutes(m);
      if (minutes <= 0) return null;
      let b;
      if (group(m, "max") || group(m, "suf_max")) b = bound(null, minutes);
      else if (group(m, "min") || group(m, "suf_min")) b = bound(minutes);
      else b = bound(Math.max(1, minutes - tables.around_runtime_slack), minutes + tables.around_runtime_slack, false, true);
      return hit(m.index, m.index + m[0].length, { runtime: b });
    },
    rating: (r, m) => {
      const scale = group(m, "scale") || group(m, "scale2") || "10";
      const value = Number(group(m, "n")) * (scale === "5" ? 2 : 1);
      if (!(value >= 0 && value <= 10)) return null;
      return hit(m.index, m.index + m[0].length, { rating: bound(value) });
    },
    negation: (r, m, today) => {
      if (group(m, "degree")) return hit(m.index, m.index + m[0].length, {});
      const hits = select(candidates(m[0], today, genreRules));
      const excluded = hits.flatMap((h) => h.effect.genres || []);
      const strong = hits.filter((h) => (h.effect.genres || []).length === 1).flatMap((h) => h.effect.genres);
      return hit(m.index, m.index + m[0].length, { exclude_genres: excluded, strong_excludes: strong });
    },
    quoted: (r, m) => hit(m.index, m.index + m[0].length, {}, [groupStart(m, "title"), groupEnd(m, "title")]),
    title: (r, m, today) => {
      if (group(m, "quoted")) {
        return hit(m.index, m.index + m[0].length, { similar_to: true }, [groupStart(m, "quoted"), groupEnd(m, "quoted")]);
      }
      const title = group(m, "title");
      if (descriptionStart.test(title) || !textTokens(title, select(candidates(title, today, baseRules))).length) return null;
      return hit(m.index, m.index + m[0].length, { similar_to: true }, [groupStart(m, "title"), groupEnd(m, "title")]);
    },
    title_but: (r, m, today) => {
      const title = group(m, "title");
      if (descriptionStart.test(title) || !textTokens(title, select(candidates(title, today, baseRules))).length) return null;
      return hit(groupStart(m, "title"), m.index + m[0].length, { similar_to: true }, [groupStart(m, "title"), groupEnd(m, "title")]);
    },
    person: (r, m) => hit(m.index, m.index + m[0].length, { person: group(m, "name").split(/\s+/).filter(Boolean).join(" ") }),
  };

  function candidates(text, today, ruleList) {
    const found = [];
    ruleList.forEach((r, index) => {
      const re = new RegExp(r.re.source, r.re.flags + "d");
      re.lastIndex = 0;
      let m;
      while ((m = re.exec(text)) !== null) {
        if (m[0].length === 0) { re.lastIndex += 1; continue; }
        const h = interpreters[r.kind](r, m, today);
        if (h) found.push([h, index]);
      }
    });
    return found;
  }

  function select(cands) {
    const sorted = [...cands].sort((a, b) => a[0].start - b[0].start || (b[0].end - b[0].start) - (a[0].end - a[0].start) || a[1] - b[1]);
    const chosen = [];
    let end = 0;
    for (const [h] of sorted) {
      if (h.start >= end) { chosen.push(h); end = h.end; }
    }
    return chosen;
  }

  function textTokens(text, hits) {
    const chars = Array.from({ length: text.length }, () => FREE);
    for (const h of hits) {
      const [ks, ke] = h.keep || [h.end, h.end];
      for (let i = h.start; i < h.end; i++) chars[i] = ks <= i && i < ke ? KEPT : CONSUMED;
    }
    const tokens = [];
    let i = 0;
    while (i < text.length) {
      let j = i;
      while (j < text.length && chars[j] === chars[i]) j++;
      if (chars[i] !== CONSUMED) {
        for (let word of text.slice(i, j).split(/\s+/)) {
          if (chars[i] === FREE) word = word.replace(/^[^\p{L}\p{N}_]+|[^\p{L}\p{N}_]+$/gu, "");
          if (word) tokens.push([word, chars[i] === KEPT]);
        }
      }
      i = j;
    }
    while (tokens.length && !tokens[0][1] && edge.has(tokens[0][0].toLowerCase())) tokens.shift();
    while (tokens.length && !tokens[tokens.length - 1][1] && edge.has(tokens[tokens.length - 1][0].toLowerCase())) tokens.pop();
    return tokens.map(([w]) => w);
  }

  function resolve(bounds) {
    const hard = bounds.filter((b) => !b.soft);
    const chosen = hard.length ? hard : bounds;
    const spans = chosen.filter((b) => b.span);
    const los = spans.map((b) => b.lo).filter((v) => v !== null);
    const his = spans.map((b) => b.hi).filter((v) => v !== null);
    let lo = spans.length && los.length ? Math.min(...los) : null;
    let hi = spans.length && his.length ? Math.max(...his) : null;
    for (const b of chosen) {
      if (!b.span && b.lo !== null) lo = lo === null ? b.lo : Math.max(lo, b.lo);
      if (!b.span && b.hi !== null) hi = hi === null ? b.hi : Math.min(hi, b.hi);
    }
    if (lo !== null && hi !== null && lo > hi) {
      const last = chosen[chosen.length - 1];
      return [last.lo, last.hi];
    }
    return [lo, hi];
  }

  const unique = (values) => [...new Set(values)];
  const asInt = (v) => (v === null ? null : roundHalfEven(v));

  return function parseQuery(query, today = new Date()) {
    if (typeof query !== "string") throw new Error("query must be a string");
    if (query.length > tables.max_query_chars) {
      throw new Error(`query is ${query.length} characters long; at most ${tables.max_query_chars} are allowed`);
    }
    const text = Array.from(query.normalize("NFKC"), (c) => sameLength[c] || c).join("");
    const hits = select(candidates(text, today, rules));
    const effects = hits.map((h) => h.effect);
    let genres = unique(effects.flatMap((e) => e.genres || []));
    const mediaTypes = unique(effects.map((e) => e.media_type).filter(Boolean));
    const [yearMin, yearMax] = resolve(effects.map((e) => e.year).filter(Boolean));
    const [runtimeMin, runtimeMax] = resolve(effects.map((e) => e.runtime).filter(Boolean));
    const [ratingMin] = resolve(effects.map((e) => e.rating).filter(Boolean));
    const strong = new Set(effects.flatMap((e) => e.strong_excludes || []));
    const excluded = unique(effects.flatMap((e) => e.exclude_genres || [])).filter((g) => strong.has(g) || !genres.includes(g));
    genres = genres.filter((g) => !strong.has(g));
    const similar = hits.filter((h) => h.effect.similar_to && h.keep).map((h) => text.slice(h.keep[0], h.keep[1]).split(/\s+/).filter(Boolean).join(" "));
    const people = unique(effects.map((e) => e.person).filter(Boolean));
    return {
      raw: query,
      text: textTokens(text, hits).join(" "),
      genres,
      exclude_genres: excluded,
      moods: unique(effects.flatMap((e) => e.moods || [])),
      year_min: asInt(yearMin),
      year_max: asInt(yearMax),
      runtime_min: asInt(runtimeMin),
      runtime_max: asInt(runtimeMax),
      rating_min: ratingMin,
      media_type: mediaTypes.length === 1 ? mediaTypes[0] : null,
      similar_to: similar.length ? similar[0] : null,
      languages: unique(effects.flatMap((e) => e.languages || [])),
      countries: unique(effects.flatMap((e) => e.countries || [])),
      people,
      notes: people.length ? [tables.people_note.replace("{names}", people.join(", "))] : [],
    };
  };
}
