// Turns the suite's summary into the Markdown table, the target checks and the SVG chart.

const fmt = (value, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const signed = (value) => `${value >= 0 ? '+' : '−'}${fmt(Math.abs(value), 1)}`

function find (summary, scenario, contender) {
  return summary.find((s) => s.scenario === scenario && s.contender === contender)
}

/** Each target of the suite that both its sides were measured for: { target, measured, met }. */
export function targets (summary, races) {
  const checks = []
  const add = (target, measured, met) => checks.push({ target, measured, met })
  for (const ours of ['sessions-memory', 'sessions-cookie', 'sessions-redis']) {
    const anon = find(summary, 'anon', ours)
    if (anon) add(`anon, ${anon.label}: within 1 µs/request of bare Fastify`, `${signed(anon.overheadUs)} µs`, anon.overheadUs <= 1)
  }
  // The CookieStore against @fastify/secure-session: at most this share of its overhead.
  // A login seals a new session and has a new id made, which secure-session does not.
  const cookieShare = { read: 1, write: 0.8, login: 1.5, browser: 1 }
  for (const [scenario, share] of Object.entries(cookieShare)) {
    const cookie = find(summary, scenario, 'sessions-cookie')
    const secure = find(summary, scenario, 'secure-session')
    if (cookie === undefined || secure === undefined) continue
    const bound = share === 1 ? "≤ @fastify/secure-session's" : `≤ ${share}× @fastify/secure-session's`
    add(`${scenario}, CookieStore overhead ${bound}`, `${signed(cookie.overheadUs)} vs ${signed(secure.overheadUs)} µs`, cookie.overheadUs <= share * secure.overheadUs)
  }
  // Logins and browsers on server-side stores: ahead of @fastify/session on the same backend.
  for (const scenario of ['login', 'browser']) {
    for (const [ours, theirs] of [['sessions-memory', 'fastify-session'], ['sessions-redis', 'fastify-session-redis']]) {
      const a = find(summary, scenario, ours)
      const b = find(summary, scenario, theirs)
      if (a && b) add(`${scenario}, ${a.label} overhead < ${b.label}'s`, `${signed(a.overheadUs)} vs ${signed(b.overheadUs)} µs`, a.overheadUs < b.overheadUs)
    }
  }
  for (const scenario of ['read', 'write']) {
    const memory = find(summary, scenario, 'sessions-memory')
    const session = find(summary, scenario, 'fastify-session')
    if (memory && session) {
      add(`${scenario}, MemoryStore overhead ≤ ⅓ of @fastify/session memory's`, `${signed(memory.overheadUs)} vs ${signed(session.overheadUs)} µs`, memory.overheadUs <= session.overheadUs / 3)
    }
    const redis = find(summary, scenario, 'sessions-redis')
    const connect = find(summary, scenario, 'fastify-session-redis')
    if (redis && connect) {
      const ratio = redis.reqPerSec / connect.reqPerSec
      add(`${scenario}, RedisStore ≥ 1.4× the req/s of @fastify/session + connect-redis`, `${fmt(ratio, 2)}×`, ratio >= 1.4)
      const cpu = redis.cpuUsPerReq / connect.cpuUsPerReq
      add(`${scenario}, RedisStore ≤ 0.6× the server CPU/request of @fastify/session + connect-redis`, `${fmt(cpu, 2)}×`, cpu <= 0.6)
    }
  }
  for (const scenario of ['read', 'write', 'login']) {
    const ours = find(summary, scenario, 'sessions-postgres')
    const theirs = find(summary, scenario, 'fastify-session-pg')
    if (ours && theirs) {
      const vs = `vs @fastify/session + connect-pg-simple`
      add(`${scenario}, PostgresStore: more req/s ${vs}`, `${fmt(ours.reqPerSec / theirs.reqPerSec, 2)}×`, ours.reqPerSec > theirs.reqPerSec)
      add(`${scenario}, PostgresStore: less server CPU/request ${vs}`, `${fmt(ours.cpuUsPerReq, 1)} vs ${fmt(theirs.cpuUsPerReq, 1)} µs`, ours.cpuUsPerReq < theirs.cpuUsPerReq)
      add(`${scenario}, PostgresStore: less database CPU/request ${vs}`, `${fmt(ours.dbUsPerReq, 1)} vs ${fmt(theirs.dbUsPerReq, 1)} µs`, ours.dbUsPerReq < theirs.dbUsPerReq)
      add(`${scenario}, PostgresStore: lower p99 ${vs}`, `${ours.p99} vs ${theirs.p99} ms`, ours.p99 < theirs.p99)
      // A write that was lost did nothing for its queries, and a conflict retry is what
      // keeps one from being lost: the fair count is queries per write that stuck.
      const perKept = (s) => s.lost == null ? s.queriesPerReq : s.queriesPerReq * s.writes / (s.writes - s.lost)
      const what = scenario === 'write' ? 'queries per increment kept' : 'queries/request'
      add(`${scenario}, PostgresStore: no more ${what} ${vs}`, `${fmt(perKept(ours), 2)} vs ${fmt(perKept(theirs), 2)}`, perKept(ours) <= perKept(theirs))
    }
  }
  // Stores measured against @fastify/session with the matching express-session store.
  const pairs = [['sessions-memcached', 'fastify-session-memcached', 'MemcachedStore', 'connect-memcached'],
    ['sessions-file', 'fastify-session-file', 'FileStore', 'session-file-store']]
  for (const [oursName, theirsName, label, anchor] of pairs) {
    for (const scenario of ['read', 'write', 'login']) {
      const ours = find(summary, scenario, oursName)
      const theirs = find(summary, scenario, theirsName)
      if (ours === undefined || theirs === undefined) continue
      const vs = `vs @fastify/session + ${anchor}`
      add(`${scenario}, ${label}: more req/s ${vs}`, `${fmt(ours.reqPerSec / theirs.reqPerSec, 2)}×`, ours.reqPerSec > theirs.reqPerSec)
      add(`${scenario}, ${label}: less server CPU/request ${vs}`, `${fmt(ours.cpuUsPerReq, 1)} vs ${fmt(theirs.cpuUsPerReq, 1)} µs`, ours.cpuUsPerReq < theirs.cpuUsPerReq)
      add(`${scenario}, ${label}: lower p99 ${vs}`, `${ours.p99} vs ${theirs.p99} ms`, ours.p99 < theirs.p99)
    }
  }
  for (const ours of ['sessions-memory', 'sessions-redis', 'sessions-postgres', 'sessions-memcached', 'sessions-file']) {
    const write = find(summary, 'write', ours)
    if (write?.lost != null) add(`write, ${write.label}: no increment lost`, `${write.lost} of ${fmt(write.writes)}`, write.lost === 0)
    if (races[ours]) add(`race, ${ours}: all 100 keys kept`, `${races[ours].kept}`, races[ours].kept === 100)
  }
  return checks
}

/** The Markdown report: one table per scenario, the races, the targets. */
export function markdown (summary, races, checks, settings, contenders) {
  const lines = [
    `${settings.machine}; autocannon with ${settings.connections} connections, ${settings.sessions} sessions per server, ` +
      `${settings.rounds} rounds of ${settings.duration} s per contender and scenario (median)` +
      `${(settings.slices ?? 1) > 1 ? `, each taken in ${settings.slices} turns` : ''}, ${settings.seconds} s in all.`,
    '',
    '| scenario | contender | req/s | × bare | p50 ms | p99 ms | errors | server CPU µs/req | overhead µs/req | queries/req | database CPU µs/req | increments lost |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const s of summary) {
    const lost = s.lost === null ? '' : `${s.lost} of ${fmt(s.writes)}`
    const overhead = s.contender === 'bare' ? '' : signed(s.overheadUs)
    const queries = s.queriesPerReq == null ? '' : fmt(s.queriesPerReq, 2)
    const database = s.dbUsPerReq == null ? '' : fmt(s.dbUsPerReq, 1)
    lines.push(`| ${s.scenario} | ${s.label} | ${fmt(s.reqPerSec)} | ${fmt(s.vsBare, 2)} | ${s.p50} | ${s.p99} | ${s.errors} | ${fmt(s.cpuUsPerReq, 1)} | ${overhead} | ${queries} | ${database} | ${lost} |`)
  }
  if (Object.keys(races).length > 0) {
    lines.push('', 'Lost-update race: 100 concurrent requests on one session, each setting its own key.', '',
      '| contender | keys kept (median) | runs |', '|---|--:|---|')
    for (const [contender, { kept, runs }] of Object.entries(races)) lines.push(`| ${contenders[contender].label} | ${kept} | ${runs.join(', ')} |`)
  }
  if (checks.length > 0) {
    lines.push('', '| target | measured | met |', '|---|---|---|')
    for (const c of checks) lines.push(`| ${c.target} | ${c.measured} | ${c.met ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n') + '\n'
}

// Ours in greens, the anchors in blues and orange, bare Fastify in grey.
const COLORS = {
  bare: '#9e9e9e',
  'sessions-memory': '#1b5e20',
  'sessions-cookie': '#43a047',
  'sessions-redis': '#81c784',
  'sessions-postgres': '#a5d6a7',
  'fastify-session': '#0d47a1',
  'fastify-session-redis': '#64b5f6',
  'fastify-session-pg': '#90caf9',
  'sessions-memcached': '#c8e6c9',
  'fastify-session-memcached': '#bbdefb',
  'sessions-file': '#dcedc8',
  'fastify-session-file': '#e3f2fd',
  'secure-session': '#e65100'
}
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;')

/** A grouped horizontal bar chart of server CPU µs per request, one group per scenario. */
export function chart (summary, scenarios, order, contenders) {
  const bar = 16
  const gap = 14
  const left = 260
  const width = 860
  const plot = width - left - 70
  const max = Math.max(...summary.map((s) => s.cpuUsPerReq))
  const rows = []
  let y = 56
  for (const scenario of scenarios) {
    rows.push(`<text x="8" y="${y + 12}" font-weight="bold">${scenario}</text>`)
    y += 20
    order.forEach((contender) => {
      const s = summary.find((r) => r.scenario === scenario && r.contender === contender)
      if (s === undefined) return
      const w = Math.max(1, (s.cpuUsPerReq / max) * plot)
      rows.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end">${escape(contenders[contender].label)}</text>`)
      rows.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${COLORS[contender] ?? '#616161'}"/>`)
      rows.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + 12}">${fmt(s.cpuUsPerReq, 1)}</text>`)
      y += bar + 4
    })
    y += gap
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${y}" fill="#fff"/>`,
    '<text x="8" y="22" font-size="15" font-weight="bold">Server CPU per request (µs, lower is better)</text>',
    '<text x="8" y="40" fill="#555">Median over rounds; each server in its own process, autocannon with 50 connections.</text>',
    ...rows,
    '</svg>',
    ''
  ].join('\n')
}
