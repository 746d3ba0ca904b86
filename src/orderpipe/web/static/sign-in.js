/* orderpipe sign-in: on a deployment whose page carries <meta name="orderpipe-sign-in">, the user
 * signs in to its Cognito user pool before the dashboard reads anything, and every API request
 * carries the access token (API Gateway checks it). Without the tag (`orderpipe serve`) requests
 * go out as they are.
 *
 * The steps are Cognito's own: the password (USER_PASSWORD_AUTH, over TLS), then whatever it
 * asks for: a new password (an account an administrator created), setting up an authenticator
 * app (the pool requires a one-time code), or the code. Tokens stay in this tab's
 * sessionStorage; an expired access token is renewed with the refresh token, and when that is
 * refused the sign-in form comes back. Exposes window.orderpipeSignIn = { ready, fetch, on }:
 * fetch(url, { timeout, ...options }) starts its timeout once the token is there. */
(() => {
  "use strict";

  /** `options.timeout` (ms) as an abort signal that starts now: after the token is there. */
  function timed({ timeout, ...options }) {
    return timeout ? { ...options, signal: AbortSignal.timeout(timeout) } : options;
  }

  const meta = document.querySelector('meta[name="orderpipe-sign-in"]');
  if (!meta) {
    window.orderpipeSignIn = { ready: Promise.resolve(), fetch: (url, options = {}) => fetch(url, timed(options)) };
    return;
  }
  const settings = JSON.parse(meta.content); // { endpoint, userPoolId, clientId }
  const KEY = "orderpipe.sign-in";
  const TIMEOUT_MS = 15000;
  const RENEW_BEFORE_MS = 60000; // renew an access token this long before it expires
  const $ = (selector) => document.querySelector(selector);

  let tokens = JSON.parse(sessionStorage.getItem(KEY) || "null"); // { access, refresh, expires }
  let waiting = null; // the sign-in under way: resolves when tokens are there
  let renewing = null; // the renewal under way: every request that needs one waits for it
  let challenge = { session: null, user: null, email: null };

  /** One call of Cognito's API; an error keeps its type (NotAuthorizedException, …). */
  async function cognito(action, body) {
    const response = await fetch(settings.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(answer.message || answer.Message || `the sign-in service answered ${response.status}`);
      error.type = String(answer.__type || "").split("#").pop();
      throw error;
    }
    return answer;
  }

  function keep(result, refresh) {
    tokens = {
      access: result.AccessToken,
      refresh: result.RefreshToken || refresh,
      expires: Date.now() + 1000 * (result.ExpiresIn || 3600),
    };
    sessionStorage.setItem(KEY, JSON.stringify(tokens));
    $("#sign-out").hidden = false;
  }

  function forget() {
    tokens = null;
    sessionStorage.removeItem(KEY);
    $("#sign-out").hidden = true;
  }

  // -- the form ------------------------------------------------------------------------------------
  function step(name) {
    document.querySelectorAll("#sign-in fieldset").forEach((f) => { f.hidden = f.dataset.step !== name; });
    $("#sign-in").dataset.step = name;
    const first = $(`#sign-in fieldset[data-step="${name}"] input`);
    if (first) first.focus();
  }

  function say(message) {
    $("#sign-in-error").textContent = message;
    $("#sign-in-error").hidden = !message;
  }

  /** What Cognito answered: tokens (signed in) or the next challenge. */
  async function answer(result) {
    if (result.AuthenticationResult) {
      keep(result.AuthenticationResult);
      $("#sign-in").close();
      const done = waiting;
      waiting = null;
      done.resolve();
      return;
    }
    challenge.session = result.Session;
    // The pool's user name is an id of its own (users sign in with their e-mail address):
    // the challenges are answered with the one Cognito names.
    const named = result.ChallengeParameters || {};
    challenge.user = named.USER_ID_FOR_SRP || named.USERNAME || challenge.user;
    if (result.ChallengeName === "NEW_PASSWORD_REQUIRED") step("new-password");
    else if (result.ChallengeName === "SOFTWARE_TOKEN_MFA") step("code");
    else if (result.ChallengeName === "MFA_SETUP") {
      const setup = await cognito("AssociateSoftwareToken", { Session: challenge.session });
      challenge.session = setup.Session;
      const label = encodeURIComponent(`orderpipe:${challenge.email}`);
      $("#sign-in-secret").textContent = setup.SecretCode;
      $("#sign-in-uri").textContent = `otpauth://totp/${label}?secret=${setup.SecretCode}&issuer=orderpipe`;
      step("setup");
    } else {
      throw new Error(`the user pool asks for a step this page cannot take (${result.ChallengeName}): ask an administrator`);
    }
  }

  const respond = (name, responses) => cognito("RespondToAuthChallenge", {
    ChallengeName: name,
    ClientId: settings.clientId,
    Session: challenge.session,
    ChallengeResponses: { USERNAME: challenge.user, ...responses },
  });

  const STEPS = {
    async password() {
      challenge.email = $("#sign-in-user").value.trim();
      challenge.user = challenge.email;
      return cognito("InitiateAuth", {
        AuthFlow: "USER_PASSWORD_AUTH",
        ClientId: settings.clientId,
        AuthParameters: { USERNAME: challenge.user, PASSWORD: $("#sign-in-password").value },
      });
    },
    async "new-password"() {
      return respond("NEW_PASSWORD_REQUIRED", { NEW_PASSWORD: $("#sign-in-new-password").value });
    },
    async setup() {
      const verified = await cognito("VerifySoftwareToken", {
        Session: challenge.session,
        UserCode: $("#sign-in-setup-code").value.trim(),
        FriendlyDeviceName: "orderpipe",
      });
      challenge.session = verified.Session;
      return respond("MFA_SETUP", {});
    },
    async code() {
      return respond("SOFTWARE_TOKEN_MFA", { SOFTWARE_TOKEN_MFA_CODE: $("#sign-in-code").value.trim() });
    },
  };

  async function submit(event) {
    event.preventDefault();
    const form = $("#sign-in form");
    const name = $("#sign-in").dataset.step;
    say("");
    form.inert = true;
    try {
      await answer(await STEPS[name]());
    } catch (error) {
      if (error.type === "NotAuthorizedException" && name !== "password") {
        step("password"); // the session ran out (3 minutes): start again
        say(`${error.message} Sign in again.`);
      } else {
        say(error.message);
      }
    } finally {
      form.inert = false;
    }
  }

  /** Shows the form until the user is signed in. */
  function signIn(message) {
    if (!waiting) {
      let resolve;
      const promise = new Promise((r) => { resolve = r; });
      waiting = { promise, resolve };
      forget();
      step("password");
      say(message || "");
      $("#sign-in").showModal();
    }
    return waiting.promise;
  }

  /** A new access token from the refresh token, once however many requests need it; when the
   * refresh token is refused (expired, revoked), the form. Any other failure (no network) is
   * the request's: the next one tries again. */
  function renew() {
    if (!renewing) {
      const refresh = tokens.refresh;
      renewing = cognito("InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: settings.clientId,
        AuthParameters: { REFRESH_TOKEN: refresh },
      }).then(
        (result) => keep(result.AuthenticationResult, refresh),
        (error) => {
          if (error.type === "NotAuthorizedException") return signIn("Your session has ended: sign in again.");
          throw error;
        },
      ).finally(() => { renewing = null; });
    }
    return renewing;
  }

  /** A token that is good for at least another minute. */
  async function token() {
    if (renewing) await renewing;
    if (!tokens) await signIn();
    else if (tokens.expires - Date.now() < RENEW_BEFORE_MS) await renew();
    return tokens.access;
  }

  /** fetch() with the access token; `options.timeout` counts from when the token is there. A
   * 401 (a token API Gateway no longer takes) renews it once, unless it was just renewed. */
  async function authorizedFetch(url, options = {}) {
    const send = async () => {
      const access = await token();
      const headers = { ...(options.headers || {}), Authorization: `Bearer ${access}` };
      return [access, await fetch(url, timed({ ...options, headers }))];
    };
    const [sent, response] = await send();
    if (response.status !== 401) return response;
    if (tokens && tokens.access === sent) await renew();
    return (await send())[1];
  }

  /** Revokes this tab's refresh token (no more renewals; other tabs and devices stay signed
   * in) and forgets the tokens. An access token already issued stays good at API Gateway until
   * it expires (15 minutes at most): a JWT authorizer does not ask Cognito. */
  async function signOut() {
    const refresh = tokens && tokens.refresh;
    forget();
    if (refresh) await cognito("RevokeToken", { ClientId: settings.clientId, Token: refresh }).catch(() => {});
    location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#sign-in form").addEventListener("submit", submit);
    $("#sign-in").addEventListener("cancel", (event) => event.preventDefault()); // no data without signing in
    $("#sign-out").addEventListener("click", signOut);
    $("#sign-out").hidden = !tokens;
  });

  window.orderpipeSignIn = {
    ready: new Promise((resolve) => document.addEventListener("DOMContentLoaded", () => token().then(resolve))),
    fetch: authorizedFetch,
    on: true,
  };
})();
