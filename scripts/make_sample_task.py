"""Generate tunewise's bundled sample task: support tickets of a SaaS product in 12 categories.

Run:  .venv/bin/python scripts/make_sample_task.py            (writes into src/tunewise/sample/)
      .venv/bin/python scripts/make_sample_task.py --out DIR  (anywhere else, e.g. for the determinism test)

Pure Python and seeded (`random.Random(seed)`): the same seed writes byte-identical files. Tickets are
composed from varied parts (openers, product areas, story sentences, concrete details, closers, tone,
typing noise), and a shingle index rejects any new ticket that is too close to one already made, so that
the only duplicates in the output are the planted ones. What a real export contains is then planted on
purpose and recorded in planted.json (1-based line numbers): PII, near and exact duplicates, wrong
labels, and train rows copied from the eval split (contamination). DATA_CARD.md is written from the
same counts.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

SEED = 20261123
TRAIN_BASE = 1900  # unique tickets before the planted copies are added
EVAL_ROWS = 300
ANNOTATION_ROWS = 300

LABELS = (
    "billing", "bug-report", "feature-request", "onboarding", "account-access", "refund",
    "cancellation", "integration", "performance", "security", "data-export", "how-to",
)
SYSTEM_PROMPT = (
    "Classify the support ticket as one of: " + ", ".join(LABELS) + ". Answer with the category name only."
)

# Realistic imbalance: how-to and bug reports dominate a support queue, security tickets are rare.
LABEL_WEIGHTS = {
    "billing": 12, "bug-report": 14, "feature-request": 9, "onboarding": 7, "account-access": 11,
    "refund": 7, "cancellation": 7, "integration": 8, "performance": 7, "security": 4,
    "data-export": 5, "how-to": 12,
}

DESCRIPTIONS = {
    "billing": "Charges, invoices, plan prices, payment methods, taxes and receipts, where the customer is not asking for money back.",
    "bug-report": "Something in the product is broken or behaves wrongly: errors, crashes, wrong data, UI glitches.",
    "feature-request": "A capability the product does not have yet, or a change to how an existing one works.",
    "onboarding": "Getting started: first setup, inviting the team, importing initial data, trial questions, training sessions.",
    "account-access": "Cannot log in: passwords, locked accounts, 2FA devices, SSO login failures, email changes.",
    "refund": "The customer wants money back: double charges, unwanted renewals, charges after cancelling.",
    "cancellation": "Ending or downgrading a subscription, closing the account, stopping auto-renewal.",
    "integration": "Connecting the product to other tools (Slack, Salesforce, Zapier, webhooks, the API) and sync problems between them.",
    "performance": "The product works but is slow: page loads, timeouts under load, slow reports, laggy sync.",
    "security": "Suspicious logins, phishing, vulnerability reports, compliance questions (SOC 2, GDPR), permissions leaks.",
    "data-export": "Getting data out: CSV/JSON exports, backups, GDPR data requests, bulk downloads, export failures.",
    "how-to": "How do I use an existing feature: where a setting lives, how to do a task in the product.",
}

# Pairs that real tickets blur; a few percent of tickets borrow a sentence from the neighbour class.
AMBIGUOUS = {
    "billing": "refund", "refund": "billing", "bug-report": "performance", "performance": "bug-report",
    "account-access": "security", "security": "account-access", "cancellation": "refund",
    "integration": "bug-report", "data-export": "how-to", "how-to": "feature-request",
    "onboarding": "how-to", "feature-request": "how-to",
}

SLOTS = {
    "plan": ["Starter", "Team", "Business", "Enterprise", "Pro", "Growth", "Pro annual", "Team monthly", "Basic"],
    "amount": ["$19.00", "$49", "$99.00", "$240", "$1,188.00", "€49.00", "€12", "£29", "$588", "$14.99", "$2,400", "€360.00", "$75.50"],
    "date": ["March 3", "last Tuesday", "yesterday", "the 1st", "2026-05-14", "June 12th", "this morning", "on Friday",
             "two days ago", "04/02", "last week", "the 15th of August", "Monday night", "Nov 3"],
    "browser": ["Chrome 126", "Firefox", "Safari on macOS", "Edge", "Chrome on Windows 11", "Safari on iPad", "Brave",
                "Firefox ESR", "the desktop app", "the Android app", "the iOS app"],
    "integration": ["Slack", "Salesforce", "HubSpot", "Zapier", "Jira", "Google Sheets", "Microsoft Teams", "Shopify",
                    "Stripe", "Zendesk", "QuickBooks", "Google Calendar", "Outlook", "Notion", "GitHub", "Okta"],
    "feature": ["dashboard", "reports page", "invoice PDF", "calendar view", "kanban board", "search", "CSV import",
                "notifications", "audit log", "settings page", "timeline view", "comment threads", "file uploads",
                "project templates", "time tracking", "mobile app", "analytics tab", "task list", "approval workflow"],
    "error": ["Error 500", "ERR_TOO_MANY_REDIRECTS", "'Something went wrong (code 0x80070005)'",
              "'TypeError: cannot read properties of undefined'", "HTTP 429 Too Many Requests", "a timeout after 30s",
              "'Unexpected token < in JSON'", "a blank white screen", "error E-4012", "'Request failed with status 403'",
              "'sync_failed: upstream unavailable'", "a 502 Bad Gateway"],
    "format": ["CSV", "JSON", "XLSX", "PDF", "Excel", "zip"],
    "duration": ["45 seconds", "over a minute", "10+ seconds", "almost two minutes", "20 seconds", "several minutes"],
    "seats": ["5", "12", "25", "40", "3", "150", "8", "60"],
    "version": ["v3.14.2", "4.2.0", "v2.9", "5.0.1", "3.8.12", "v4.1.7"],
    "company": ["our agency", "our clinic", "the marketing team", "our warehouse", "the sales org", "our school",
                "the finance department", "our startup", "the support team", "our law firm", "the design studio"],
    "count": ["300", "a few hundred", "2,000", "about 50", "12k", "40", "thousands of", "roughly 900"],
}


def _invoice(rng: random.Random) -> str:
    return f"INV-{rng.choice([2025, 2026])}-{rng.randint(100, 99999):05d}"


def _order(rng: random.Random) -> str:
    return f"#{rng.randint(10000, 999999)}"


def _ticket_ref(rng: random.Random) -> str:
    return f"{rng.choice(['ticket', 'case', 'request'])} {rng.choice(['#', 'SUP-', 'CS-'])}{rng.randint(1000, 99999)}"


# Story sentences per category. {slot} names refer to SLOTS or to the generated ids above.
STORIES: dict[str, list[str]] = {
    "billing": [
        "I was charged {amount} on {date} but our plan is {plan}, which should be cheaper.",
        "Our invoice {invoice} shows {seats} seats but we only have {seats} people using it.",
        "Can you add our VAT number to the invoices going forward?",
        "The card on file expired and I can't find where to update the payment method.",
        "Why did the price of the {plan} plan go up this month without any notice?",
        "We need the invoices addressed to the finance department instead of me.",
        "I'd like to switch from monthly to annual billing to get the discount.",
        "The receipt for {date} is missing from the billing history page.",
        "Sales tax was added to invoice {invoice} even though we're tax exempt.",
        "Can we pay by bank transfer instead of credit card for the {plan} plan?",
        "The charge says {amount} but the pricing page says {amount} for {seats} seats.",
        "We added {seats} seats mid-cycle and the prorated amount looks wrong.",
        "Our accountant needs a copy of every invoice since {date}.",
        "Is there a nonprofit discount on the {plan} plan?",
        "The billing email still goes to someone who left {company}.",
        "I got a payment failed email but the bank says nothing was declined.",
    ],
    "bug-report": [
        "When I click save on the {feature} I get {error}.",
        "The {feature} shows yesterday's numbers even after a refresh.",
        "Since the update to {version} the {feature} crashes every time I open it in {browser}.",
        "Dragging a card on the {feature} puts it in the wrong column.",
        "Dates in the {feature} are off by one day for everyone in our timezone.",
        "The export button on the {feature} does nothing, no error, nothing in the console either.",
        "Notifications are sent twice for every comment.",
        "Uploading a file larger than 10 MB fails with {error}.",
        "The search returns results from archived projects even with the filter off.",
        "In {browser} the {feature} is cut off and the buttons overlap.",
        "Duplicating a template drops all the checklist items.",
        "The total in the {feature} doesn't match the sum of the rows.",
        "I keep getting logged into the wrong workspace after the {version} release.",
        "Recurring tasks created on {date} never showed up.",
        "Emojis in task names turn into question marks in the {feature}.",
        "The {feature} throws {error} if a name has an apostrophe in it.",
    ],
    "feature-request": [
        "It would be great if the {feature} could be filtered by assignee.",
        "Please add a dark mode, my team works late and the white screen hurts.",
        "Could you support exporting the {feature} to {format} directly?",
        "We'd love a native {integration} integration instead of going through Zapier.",
        "Is there any plan to add custom fields to the {feature}?",
        "Can you let admins set a default view for everyone?",
        "We need recurring tasks that repeat on the last business day of the month.",
        "Please make it possible to bulk edit due dates.",
        "A read-only guest role would help us share the {feature} with clients.",
        "It would save us hours if the {feature} had keyboard shortcuts.",
        "Could the mobile app work offline and sync later?",
        "Please allow more than one assignee per task.",
        "Would be nice to get a weekly summary email of the {feature}.",
        "We want to schedule reports to go out automatically every Monday.",
        "Could you add a Gantt chart option next to the {feature}?",
    ],
    "onboarding": [
        "We just signed up for the trial and I'm not sure where to start.",
        "How do I invite my {seats} teammates without sending each invite by hand?",
        "We're moving from spreadsheets and need to bring in {count} existing projects.",
        "Is there a setup call or training session for new teams?",
        "I'm the new admin for {company} and nobody left any notes on how it's set up.",
        "Which template should we use to get started as a small team?",
        "Our trial ends on {date}; can we get a few more days to finish the setup?",
        "The getting-started checklist is stuck at step 3 of 5.",
        "Do you have a guide for migrating from Trello or Asana?",
        "We bought the {plan} plan and want to know what to configure first.",
        "The welcome email never arrived so I don't know how to activate the workspace.",
        "Can someone walk {company} through the basics next week?",
        "What's the recommended way to structure workspaces for {seats} people?",
    ],
    "account-access": [
        "I can't log in, it says my password is wrong but I reset it {date}.",
        "The password reset email never arrives, I checked spam.",
        "I got a new phone and lost my authenticator app, now I'm locked out.",
        "My account is locked after too many attempts and I need it for a meeting in an hour.",
        "SSO login loops back to the sign-in page with {error}.",
        "I changed jobs and need to move my login to a new email address.",
        "The 2FA code is always rejected even though the time on my phone is right.",
        "It says no account exists for my email but I've used it for two years.",
        "Our admin left and nobody can get into the owner account.",
        "I'm stuck on the verify your email screen and the link has expired.",
        "Logging in with Google shows {error} since {date}.",
        "The magic link logs me into an empty workspace instead of ours.",
    ],
    "refund": [
        "I was charged twice for the same month, {amount} each on {date}.",
        "Our subscription renewed for a full year at {amount} and we didn't want it to.",
        "I cancelled on {date} and was still charged {amount}, please refund it.",
        "We were billed for {seats} seats we removed weeks ago and want the difference back.",
        "Please refund the {amount} charge, it was supposed to be a free trial.",
        "I upgraded by mistake to {plan} and want my money back for the difference.",
        "The annual charge went through the day after I downgraded, I need that reversed.",
        "Your pricing page promised a 30-day money-back guarantee, I'd like to use it.",
        "We paid invoice {invoice} twice, once by card and once by transfer.",
        "How long does a refund take to show on my card? It's been 10 days.",
        "A colleague used the company card to buy a second workspace by accident, please refund.",
    ],
    "cancellation": [
        "Please cancel our subscription at the end of the current billing period.",
        "We're closing {company} and need to shut down the account.",
        "How do I turn off auto-renew? I can't find it anywhere.",
        "We decided to go with another tool, please cancel the {plan} plan.",
        "I want to downgrade from {plan} to the free tier.",
        "Cancel my account. I've asked twice already.",
        "We don't need the {seats} extra seats anymore, please remove them at renewal.",
        "What happens to our data if we cancel on {date}?",
        "Our budget was cut, so we have to stop the subscription after this month.",
        "The cancel button in settings just spins forever.",
        "Please confirm in writing that our account will not renew.",
    ],
    "integration": [
        "The {integration} integration stopped syncing on {date}.",
        "New tasks don't show up in {integration} anymore, old ones are fine.",
        "Connecting {integration} fails with {error} right after the OAuth screen.",
        "Our webhook to {integration} fires twice for every update.",
        "The API returns HTTP 401 with a key that works in Postman.",
        "Fields mapped to {integration} come through empty.",
        "We use Zapier to push form entries in and about half of them are missing.",
        "Can the {integration} integration sync both ways or only one way?",
        "Since {version} the {integration} app posts to the wrong channel.",
        "The calendar sync with {integration} duplicates every event.",
        "Our API calls hit a rate limit at about 100 requests, is that expected?",
        "I reauthorized {integration} but the status still says disconnected.",
    ],
    "performance": [
        "The {feature} takes {duration} to load for us.",
        "Everything is really slow since {date}, even switching projects.",
        "Generating a report with {count} rows times out after {duration}.",
        "Typing in the editor lags a second behind my keyboard.",
        "Search takes {duration} to return anything on our workspace.",
        "The mobile app freezes for a few seconds whenever I open a project.",
        "Uploads crawl at maybe 100 KB/s while our connection is fine.",
        "The {feature} is fast in the morning but unusable after 2 pm our time.",
        "Loading a board with {count} cards makes {browser} use 3 GB of memory.",
        "Sync between {integration} and your app now takes {duration} instead of seconds.",
        "The API responds in {duration} for simple list calls.",
        "Scrolling the {feature} stutters badly in {browser}.",
    ],
    "security": [
        "I got a login alert from a country I've never been to.",
        "Someone sent our team a phishing email that looks exactly like your invoices.",
        "I think I found a vulnerability in the file sharing links, who do I report it to?",
        "Can you send us your SOC 2 report and the latest pen test summary?",
        "A former employee can still see our projects even though we removed him.",
        "There are API tokens in our account that nobody here created.",
        "Do you encrypt data at rest, and where are your servers located for GDPR?",
        "Public share links seem to be indexed by search engines.",
        "We need to enforce 2FA for everyone at {company}, is that possible?",
        "The audit log shows an admin role change on {date} that none of us made.",
        "A guest user was able to open a private project by changing the URL.",
    ],
    "data-export": [
        "How can I export all our projects to {format}?",
        "The {format} export only contains the first 1,000 rows.",
        "We need a full backup of our workspace before {date}.",
        "Under GDPR I'm requesting a copy of all personal data you hold about me.",
        "The export email link says expired when I click it an hour later.",
        "Can we get attachments included in the export, not just the task data?",
        "Exporting the {feature} to {format} mangles accented characters.",
        "Is there an API endpoint to pull all data nightly for our warehouse?",
        "The export has been stuck at processing since {date}.",
        "We're leaving and need every comment and file history in a usable format.",
        "Dates in the {format} export come out in a format Excel can't read.",
    ],
    "how-to": [
        "How do I change the default due date time?",
        "Where is the setting to stop getting emails for every comment?",
        "How can I move a task from one project to another?",
        "Is there a way to see everything assigned to me across workspaces?",
        "How do I give someone access to just one project?",
        "Where do I change the workspace logo?",
        "How do I set up a recurring task every other Thursday?",
        "How can I archive a project without deleting it?",
        "Can I change the language of the interface to German?",
        "How do I print the {feature}?",
        "What's the difference between a member and a guest?",
        "How do I turn on the {feature} for my team?",
        "Where can I find the keyboard shortcuts?",
        "How do I restore something I deleted by accident?",
    ],
}

# Extra context sentences (category-neutral) that make stories longer and varied.
CONTEXT = [
    "We're on the {plan} plan with {seats} users.",
    "This is for {company}.",
    "I'm using {browser}.",
    "Nothing changed on our side as far as I know.",
    "It worked fine until {date}.",
    "I already tried logging out and back in.",
    "Cleared the cache, same thing.",
    "My colleague sees the same.",
    "It happens on two different laptops.",
    "Reference: {ticket_ref}.",
    "This is blocking our weekly planning.",
    "Our manager is asking me about it every day.",
    "I looked through the help center first but couldn't find anything.",
    "Happy to share screenshots if it helps.",
    "We've been customers for about three years.",
    "It's not urgent but would be good to sort out this week.",
    "Order {order} if that matters.",
    "Our workspace is the one called {workspace}.",
    "I'm not very technical so sorry if this is obvious.",
    "Last time support fixed it within a day, hoping for the same.",
]

WORKSPACES = ["acme-ops", "northwind", "blue-harbor", "studio-kite", "greenfield-hq", "orbit-labs", "maple-dental",
              "riverbank-legal", "tundra-retail", "pixel-foundry"]

OPENERS = {
    "angry": ["This is ridiculous.", "Seriously?", "I'm really frustrated.", "Third time writing about this.",
              "Unacceptable.", "I'm losing patience here.", "What is going on with your product?", "Not happy."],
    "polite": ["Hi there,", "Hello,", "Good morning,", "Hi team,", "Hello support team,", "Hi, hope you're well.",
               "Dear support,", "Hey folks,"],
    "neutral": ["Hi.", "Hello.", "Quick question.", "Question about our account.", "", "", "FYI:"],
    "terse": ["", "", "", "hi", "hey"],
}

CLOSERS = {
    "angry": ["Fix this now.", "I expect an answer today.", "We pay for this, it should work.",
              "If this isn't fixed we're leaving.", "Very disappointed.", "Please escalate this."],
    "polite": ["Thanks so much for your help!", "Thank you in advance.", "Appreciate any pointers.",
               "Many thanks.", "Thanks, have a great day.", "Let me know if you need anything else from me."],
    "neutral": ["Thanks.", "Let me know.", "Please advise.", "Regards.", "", "Thanks in advance."],
    "terse": ["", "", "thx", "pls help", "asap"],
}

SIGNOFFS = ["", "", "", "", "-- sent from my phone", "— Ops team", "Support admin, {company}", "(account owner)"]

TONE_WEIGHTS = {"angry": 2, "polite": 4, "neutral": 3, "terse": 2}

# Fake people, places and numbers for the planted PII (names with accents on purpose).
FIRST = ["Maria", "Jonas", "Priya", "Liam", "Sofia", "Kenji", "Amara", "Lukas", "Chloé", "Mateo", "Olivia", "Noah",
         "Fatima", "Henrik", "Aoife", "Diego", "Elena", "Tomasz", "Grace", "Rahul", "Zoë", "Mehmet", "Ingrid", "Kwame"]
LAST = ["Weber", "Raman", "O'Connor", "García", "Nakamura", "Okafor", "Schmidt", "Dubois", "Rossi", "Johansson",
        "Kowalski", "Silva", "Murphy", "Patel", "Nguyen", "Müller", "Bianchi", "Andersen", "Mensah", "Lefèvre"]
STREETS_US = ["Elm Street", "Oak Avenue", "Maple Drive", "Sunset Blvd", "Pine St", "Lakeview Road", "Cedar Lane",
              "Washington Ave", "Hillcrest Court", "Park Place", "Mission St", "Riverside Drive"]
CITIES_US = ["Springfield, IL 62704", "Austin, TX 78701", "Portland, OR 97205", "Denver, CO 80202",
             "Madison, WI 53703", "Raleigh, NC 27601"]
ADDR_EU = ["Hauptstraße {n}, 10115 Berlin", "{n} rue de la Paix, 75002 Paris", "Kaiserstraße {n}, 60311 Frankfurt",
           "{n} avenue Victor Hugo, 69002 Lyon", "Calle Mayor {n}, 28013 Madrid", "{n} High Street, Bristol BS1 2AW",
           "Via Roma {n}, 00184 Roma", "Keizersgracht {n}, 1015 CJ Amsterdam"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "northwind-logistics.com", "blueharbor.io", "studiokite.co.uk",
           "maple-dental.ca", "web.de", "orange.fr", "riverbank-legal.com"]


def luhn_complete(prefix_digits: str, length: int, rng: random.Random) -> str:
    """A card number with the given prefix and length whose last digit makes the Luhn sum a multiple of 10."""
    body = prefix_digits + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix_digits) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def iban_complete(country: str, bban: str) -> str:
    """An IBAN whose two check digits satisfy ISO 13616 mod-97."""
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    return f"{country}{check:02d}{bban}"


def make_pii(kind: str, rng: random.Random) -> tuple[str, str]:
    """(sentence, value) for one planted PII item of `kind`; the value appears verbatim in the sentence."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    if kind == "email":
        user = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", f"{first}_{last[:3]}"])
        user = re.sub(r"[^A-Za-z0-9._]", "", user.encode("ascii", "ignore").decode()).lower()
        value = f"{user}@{rng.choice(DOMAINS)}"
        sentence = rng.choice(["You can reach me at {v}.", "Please reply to {v} instead of this address.",
                               "The account email is {v}.", "cc {v} on the answer please."])
    elif kind == "phone":
        value = rng.choice([
            f"({rng.randint(201, 989)}) 555-{rng.randint(100, 199):04d}",
            f"+1 {rng.randint(201, 989)}-555-{rng.randint(100, 199):04d}",
            f"+44 20 7946 {rng.randint(0, 999):04d}", f"07700 900{rng.randint(100, 999)}",
            f"+49 30 {rng.randint(1000000, 9999999)}", f"030 {rng.randint(100000, 9999999)}",
            f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            f"06.{rng.randint(10, 99)}.{rng.randint(10, 99)}.{rng.randint(10, 99)}.{rng.randint(10, 99)}",
            f"+91 98{rng.randint(100, 999)} {rng.randint(10000, 99999)}", f"+1415555{rng.randint(1000, 1999)}",
        ])
        sentence = rng.choice(["Call me on {v} if that's easier.", "My number is {v}.",
                               "Best to phone me at {v} after 3pm.", "Mobile: {v}"])
    elif kind == "card":
        prefix, length = rng.choice([("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("6011", 16)])
        digits = luhn_complete(prefix, length, rng)
        sep = rng.choice([" ", "-", ""])
        groups = [digits[i:i + 4] for i in range(0, 16, 4)] if length == 16 else [digits[:4], digits[4:10], digits[10:]]
        value = sep.join(groups)
        sentence = rng.choice(["The card that was charged is {v}.", "Please use card {v} from now on.",
                               "I see the charge on my card {v}.", "card number {v} exp 09/28"])
    elif kind == "iban":
        country = rng.choice(["DE", "FR", "GB", "NL", "ES"])
        if country == "DE":
            bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
        elif country == "FR":
            bban = "".join(str(rng.randint(0, 9)) for _ in range(23))
        elif country == "GB":
            bban = rng.choice(["NWBK", "BARC", "MIDL"]) + "".join(str(rng.randint(0, 9)) for _ in range(14))
        elif country == "NL":
            bban = rng.choice(["ABNA", "INGB", "RABO"]) + "".join(str(rng.randint(0, 9)) for _ in range(10))
        else:
            bban = "".join(str(rng.randint(0, 9)) for _ in range(20))
        raw = iban_complete(country, bban)
        value = " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.6 else raw
        sentence = rng.choice(["Please send the money back to IBAN {v}.", "Our bank account is {v}.",
                               "Refund to {v} please, the card is closed."])
    elif kind == "ssn":
        area = rng.choice([a for a in range(1, 900) if a != 666])
        value = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        sentence = rng.choice(["For verification my SSN is {v}.", "The tax form needs my SSN {v}, is that right?",
                               "I typed my social security number {v} into the form by mistake."])
    elif kind == "ip":
        if rng.random() < 0.75:
            value = f"{rng.choice([203, 198, 185, 91, 77, 45])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        else:
            value = f"2001:db8:{rng.randint(0, 0xffff):x}::{rng.randint(1, 0xffff):x}"
        sentence = rng.choice(["The login came from {v}.", "Our office IP is {v}, please allowlist it.",
                               "The audit log lists the address {v}."])
    elif kind == "name":
        value = f"{first} {last}"
        sentence = rng.choice(["My name is {v} and I'm the account owner.", "This is {v} from accounting.",
                               "Regards,\n{v}", "Thanks,\n{v}", "Please ask for {v} when you call."])
    elif kind == "address":
        if rng.random() < 0.5:
            value = f"{rng.randint(3, 9800)} {rng.choice(STREETS_US)}, {rng.choice(CITIES_US)}"
        else:
            value = rng.choice(ADDR_EU).format(n=rng.randint(1, 120))
        sentence = rng.choice(["Our billing address changed to {v}.", "Please send the paperwork to {v}.",
                               "The office is at {v}."])
    else:
        raise ValueError(kind)
    return sentence.format(v=value), value


PII_KINDS = ["email", "email", "phone", "phone", "card", "name", "address", "ip", "iban", "ssn"]


def fill(template: str, rng: random.Random) -> str:
    """Replace every {slot} in a template with a random value."""
    def pick(match: re.Match) -> str:
        slot = match.group(1)
        if slot == "invoice":
            return _invoice(rng)
        if slot == "order":
            return _order(rng)
        if slot == "ticket_ref":
            return _ticket_ref(rng)
        if slot == "workspace":
            return rng.choice(WORKSPACES)
        return rng.choice(SLOTS[slot])
    return re.sub(r"\{(\w+)\}", pick, template)


KEYBOARD_SLIPS = {"the": "teh", "and": "adn", "you": "yuo", "with": "wiht", "receive": "recieve",
                  "account": "acount", "because": "becuase", "please": "plz", "separate": "seperate", "it's": "its"}


def add_typos(text: str, rng: random.Random, rate: float) -> str:
    """Common slips and swapped letters in a fraction of the words."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if rng.random() >= rate:
            continue
        low = word.lower()
        if low in KEYBOARD_SLIPS:
            words[i] = KEYBOARD_SLIPS[low]
        elif len(word) > 4 and word.isalpha():
            j = rng.randint(1, len(word) - 3)
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    return " ".join(words)


def compose(label: str, rng: random.Random, *, ambiguous: bool = False) -> str:
    """One ticket: opener, a story from the label's sentences (plus context, maybe a neighbour's), closer."""
    tone = rng.choices(list(TONE_WEIGHTS), weights=list(TONE_WEIGHTS.values()))[0]
    n_story = 1 if tone == "terse" else rng.choices([1, 2, 3, 4], weights=[3, 5, 3, 1])[0]
    story = [fill(s, rng) for s in rng.sample(STORIES[label], n_story)]
    n_context = 0 if tone == "terse" else rng.choices([0, 1, 2, 3, 5, 8], weights=[2, 5, 4, 2, 1, 0.4])[0]
    context = [fill(s, rng) for s in rng.sample(CONTEXT, n_context)]
    rest = context + story[1:]
    rng.shuffle(rest)
    parts = story[:1] + rest
    if ambiguous:
        parts.insert(rng.randint(1, len(parts)), fill(rng.choice(STORIES[AMBIGUOUS[label]]), rng))
    opener, closer = rng.choice(OPENERS[tone]), rng.choice(CLOSERS[tone])
    signoff = fill(rng.choice(SIGNOFFS), rng) if tone != "terse" else ""
    body = " ".join(p for p in parts if p)
    pieces = [p for p in (opener, body, closer) if p]
    text = ("\n\n" if rng.random() < 0.25 else " ").join(pieces)
    if signoff:
        text += "\n" + signoff
    if tone == "terse" or rng.random() < 0.12:
        text = text.lower()
        if rng.random() < 0.6:
            text = re.sub(r"[.,!?;:]+(?=\s|$)", "", text)
    if tone == "angry" and rng.random() < 0.3:
        text = re.sub(r"\b(now|today|twice|again|nothing)\b", lambda m: m.group(1).upper(), text)
    if rng.random() < 0.3:
        text = add_typos(text, rng, rate=rng.choice([0.03, 0.06, 0.1]))
    return text.strip()


_WORD = re.compile(r"\w+")


def shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    """Word k-shingles of the lowercased text (a text shorter than k words is one shingle)."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {tuple(words)}
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


class Distinct:
    """Rejects a candidate whose shingle Jaccard with any accepted text reaches `limit` (inverted index)."""

    def __init__(self, limit: float = 0.3):
        self.limit = limit
        self.index: dict[tuple, list[int]] = defaultdict(list)
        self.sizes: list[int] = []
        self.exact: set[str] = set()

    def add(self, text: str) -> bool:
        norm = normalize(text)
        if norm in self.exact:
            return False
        sh = shingles(text)
        shared: Counter = Counter()
        for s in sh:
            for j in self.index.get(s, ()):
                shared[j] += 1
        for j, inter in shared.items():
            if inter / (len(sh) + self.sizes[j] - inter) >= self.limit:
                return False
        idx = len(self.sizes)
        self.sizes.append(len(sh))
        for s in sh:
            self.index[s].append(idx)
        self.exact.add(norm)
        return True


def generate_tickets(n: int, rng: random.Random, distinct: Distinct) -> list[tuple[str, str, bool]]:
    """n distinct (text, label, ambiguous) tickets with the imbalanced label mix."""
    out: list[tuple[str, str, bool]] = []
    labels, weights = list(LABEL_WEIGHTS), list(LABEL_WEIGHTS.values())
    while len(out) < n:
        label = rng.choices(labels, weights=weights)[0]
        ambiguous = rng.random() < 0.08
        text = compose(label, rng, ambiguous=ambiguous)
        if len(text.split()) > 200 or not distinct.add(text):
            continue
        out.append((text, label, ambiguous))
    return out


GREETINGS = ["Hi,", "Hello again,", "Hi team,", "Following up:", "Re:", "Hey,"]
SWAPS = {"I": "we", "my": "our", "can't": "cannot", "really": "very", "please": "pls", "the": "this",
         "is": "seems", "a": "one", "it": "this", "to": "to"}


def light_edit(text: str, rng: random.Random) -> str:
    """A near-duplicate: one or two words changed, a greeting added or a typo, as a resend would look."""
    edits = rng.sample(["greeting", "swap", "typo", "drop", "suffix"], rng.randint(1, 2))
    words = text.split(" ")
    if "swap" in edits:
        idx = [i for i, w in enumerate(words) if w in SWAPS]
        for i in rng.sample(idx, min(len(idx), 2)):
            words[i] = SWAPS[words[i]]
    if "drop" in edits and len(words) > 20:
        del words[rng.randrange(len(words))]
    text = " ".join(words)
    if "typo" in edits:
        text = add_typos(text, rng, rate=0.08)
    if "greeting" in edits:
        text = rng.choice(GREETINGS) + " " + text
    if "suffix" in edits:
        text = text + rng.choice([" Any update?", " Still waiting on this.", " (sent again, no reply yet)", " Thanks!"])
    return text


def exact_copy(text: str, rng: random.Random) -> str:
    """The same ticket again, differing only in case or whitespace (a double-submitted form)."""
    style = rng.choice(["same", "lower", "spaces", "trailing"])
    if style == "lower":
        return text.lower()
    if style == "spaces":
        return re.sub(r" ", "  ", text, count=3)
    if style == "trailing":
        return text + "  "
    return text


def plausible_wrong_label(label: str, rng: random.Random) -> str:
    """A wrong label as a hurried agent would pick it: usually the neighbour class, sometimes any other."""
    if rng.random() < 0.6:
        return AMBIGUOUS[label]
    return rng.choice([l for l in LABELS if l != label])


def insert_pii(text: str, rng: random.Random, kinds: list[str]) -> tuple[str, list[dict]]:
    """Add one sentence per PII kind at a sentence boundary; return the text and [{type, text}]."""
    items = []
    for kind in kinds:
        sentence, value = make_pii(kind, rng)
        if kind == "name" and "\n" in sentence:
            text = text + "\n" + sentence  # a signature goes last
        else:
            cut = [m.end() for m in re.finditer(r"[.!?] ", text)]
            pos = rng.choice(cut) if cut else len(text)
            text = (text[:pos] + sentence + " " + text[pos:]) if cut else (text + " " + sentence)
        items.append({"type": kind, "text": value})
    return text, items


def chat_row(text: str, label: str) -> str:
    row = {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text},
                        {"role": "assistant", "content": label}]}
    return json.dumps(row, ensure_ascii=False)


def build(seed: int = SEED) -> dict[str, object]:
    """Everything the sample folder holds, as {file name: content}, from one seed."""
    rng = random.Random(seed)
    distinct = Distinct(limit=0.3)
    eval_rows = generate_tickets(EVAL_ROWS, rng, distinct)
    base = generate_tickets(TRAIN_BASE, rng, distinct)
    annotation_rows = generate_tickets(ANNOTATION_ROWS, rng, distinct)

    # Each base row gets at most one role, so that the ground truth stays unambiguous.
    order = list(range(TRAIN_BASE))
    rng.shuffle(order)
    long_enough = [i for i in order if len(base[i][0].split()) >= 25 and not base[i][2]]
    n_near, n_exact = round(TRAIN_BASE * 0.03), round(TRAIN_BASE * 0.01)
    near_src = long_enough[:n_near]
    exact_src = long_enough[n_near:n_near + n_exact]
    used = set(near_src) | set(exact_src)
    clear = [i for i in order if i not in used and not base[i][2]]
    wrong_idx = clear[: round(TRAIN_BASE * 0.03)]
    used |= set(wrong_idx)
    free = [i for i in order if i not in used]
    pii_idx = free[: round(TRAIN_BASE * 0.08)]

    texts = [t for t, _, _ in base]
    given = [l for _, l, _ in base]
    true = list(given)
    pii_items: dict[int, list[dict]] = {}
    for i in pii_idx:
        kinds = [rng.choice(PII_KINDS)] + ([rng.choice(PII_KINDS)] if rng.random() < 0.25 else [])
        texts[i], pii_items[i] = insert_pii(texts[i], rng, list(dict.fromkeys(kinds)))
    for i in wrong_idx:
        given[i] = plausible_wrong_label(true[i], rng)

    # Rows as (text, given, true, tag); copies are inserted after their source at a random later place.
    rows: list[dict] = [{"text": texts[i], "given": given[i], "true": true[i], "base": i} for i in range(TRAIN_BASE)]
    extra: list[dict] = []
    for i in near_src:
        for _ in range(20):
            copy = light_edit(texts[i], rng)
            if 0.45 < jaccard(copy, texts[i]) < 1.0 and normalize(copy) != normalize(texts[i]):
                break
        extra.append({"text": copy, "given": given[i], "true": true[i], "copies": i, "kind": "near"})
    for i in exact_src:
        extra.append({"text": exact_copy(texts[i], rng), "given": given[i], "true": true[i], "copies": i, "kind": "exact"})
    contam_eval = rng.sample([j for j in range(EVAL_ROWS) if len(eval_rows[j][0].split()) >= 25], 5)
    for j in contam_eval:
        for _ in range(20):
            copy = light_edit(eval_rows[j][0], rng)
            if jaccard(copy, eval_rows[j][0]) > 0.45 and normalize(copy) != normalize(eval_rows[j][0]):
                break
        extra.append({"text": copy, "given": eval_rows[j][1], "true": eval_rows[j][1], "eval": j, "kind": "contamination"})
    for item in extra:
        rows.insert(rng.randint(0, len(rows)), item)

    line_of_base = {row["base"]: n for n, row in enumerate(rows, 1) if "base" in row}
    # Eval PII (about 2%), planted after the contamination copies were taken so they stay PII-free.
    eval_texts = [t for t, _, _ in eval_rows]
    eval_pii: dict[int, list[dict]] = {}
    for j in rng.sample([j for j in range(EVAL_ROWS) if j not in contam_eval], 6):
        eval_texts[j], eval_pii[j] = insert_pii(eval_texts[j], rng, [rng.choice(PII_KINDS)])

    planted = {
        "seed": seed,
        "note": "Line numbers are 1-based lines of tickets-train.jsonl / tickets-eval.jsonl.",
        "train": {
            "pii": [{"line": line_of_base[i], "items": pii_items[i]} for i in sorted(pii_items, key=line_of_base.get)],
            "near_duplicates": [], "exact_duplicates": [], "contamination": [],
            "wrong_labels": [{"line": line_of_base[i], "given": given[i], "true": true[i]}
                             for i in sorted(wrong_idx, key=line_of_base.get)],
        },
        "eval": {"pii": [{"line": j + 1, "items": eval_pii[j]} for j in sorted(eval_pii)]},
    }
    for n, row in enumerate(rows, 1):
        kind = row.get("kind")
        if kind in ("near", "exact"):
            src = line_of_base[row["copies"]]
            entry = {"line": n, "copies": src}
            if kind == "near":
                entry["jaccard"] = round(jaccard(row["text"], texts[row["copies"]]), 3)
                planted["train"]["near_duplicates"].append(entry)
            else:
                planted["train"]["exact_duplicates"].append(entry)
        elif kind == "contamination":
            planted["train"]["contamination"].append({
                "train_line": n, "eval_line": row["eval"] + 1,
                "jaccard": round(jaccard(row["text"], eval_texts[row["eval"]]), 3)})

    train_jsonl = "".join(chat_row(r["text"], r["given"]) + "\n" for r in rows)
    eval_jsonl = "".join(chat_row(t, eval_rows[j][1]) + "\n" for j, t in enumerate(eval_texts))
    annotations_csv, agreement = build_annotations(annotation_rows, rng)
    planted["annotations"] = agreement
    stats = {
        "train_rows": len(rows), "eval_rows": EVAL_ROWS, "annotation_rows": len(annotation_rows),
        "train_labels": Counter(r["given"] for r in rows), "eval_labels": Counter(l for _, l, _ in eval_rows),
        "train_words": sorted(len(r["text"].split()) for r in rows),
        "ambiguous": sum(1 for _, _, a in base if a),
    }
    return {
        "tickets-train.jsonl": train_jsonl,
        "tickets-eval.jsonl": eval_jsonl,
        "tickets-annotations.csv": annotations_csv,
        "planted.json": json.dumps(planted, indent=1, ensure_ascii=False) + "\n",
        "DATA_CARD.md": data_card(planted, stats, seed),
    }


NON_ASCII_LINES = [
    "Hi, this is Zoë from the Zürich office — the “Reports” tab is empty again 😕",
    "Bonjour, c’est Chloé : the export shows “Ã©” instead of é.",
    "José here 👋 quick one:",
    "Grüße aus München!",
    "Søren (IT) asked me to forward this ➜",
    "Ça ne marche pas…",
]


def build_annotations(rows: list[tuple[str, str, bool]], rng: random.Random) -> tuple[str, dict]:
    """A CSV export with three annotators who disagree realistically, more often on ambiguous tickets."""
    buf = io.StringIO()
    writer = csv.writer(buf)  # default dialect: \r\n line ends and quoted multi-line cells, like a spreadsheet export
    writer.writerow(["ticket_id", "text", "label", "annotator_1", "annotator_2", "annotator_3"])
    votes = []
    for k, (text, label, ambiguous) in enumerate(rows):
        if rng.random() < 0.1:
            text = rng.choice(NON_ASCII_LINES) + rng.choice(["\n", " "]) + text
        if rng.random() < 0.15 and "\n" not in text:
            text = text.replace(". ", ".\n", 1)
        if rng.random() < 0.05:
            text = text.replace("'", "’")
        p_right = 0.78 if ambiguous else 0.94
        labels = []
        for _ in range(3):
            if rng.random() < p_right:
                labels.append(label)
            else:
                labels.append(AMBIGUOUS[label] if rng.random() < 0.7 else rng.choice([l for l in LABELS if l != label]))
        votes.append(labels)
        writer.writerow([f"T-{40000 + k * 7 + rng.randint(0, 6)}", text, label, *labels])
    pairs = {}
    for a, b in combinations(range(3), 2):
        pairs[f"annotator_{a + 1}~annotator_{b + 1}"] = round(sum(v[a] == v[b] for v in votes) / len(votes), 3)
    return buf.getvalue(), {"rows": len(rows), "pairwise_agreement": pairs,
                            "mean_pairwise_agreement": round(sum(pairs.values()) / 3, 3),
                            "fleiss_kappa": round(fleiss_kappa(votes), 3)}


def fleiss_kappa(votes: list[list[str]]) -> float:
    """Fleiss' kappa for a fixed number of raters per item."""
    n = len(votes[0])
    cats = Counter(l for v in votes for l in v)
    total = len(votes) * n
    p_e = sum((c / total) ** 2 for c in cats.values())
    p_bar = sum((sum(c * c for c in Counter(v).values()) - n) / (n * (n - 1)) for v in votes) / len(votes)
    return (p_bar - p_e) / (1 - p_e)


def data_card(planted: dict, stats: dict, seed: int) -> str:
    """DATA_CARD.md from the measured counts (nothing in it is typed by hand)."""
    words = stats["train_words"]
    train = planted["train"]
    pii_types = Counter(item["type"] for row in train["pii"] for item in row["items"])
    eval_types = Counter(item["type"] for row in planted["eval"]["pii"] for item in row["items"])
    lines = [
        "# Sample task: SaaS support-ticket routing (12 categories)",
        "",
        "A synthetic support queue of a project-management SaaS product. Each row is one customer ticket; the",
        "task is to route it to one of 12 categories. It is bundled with tunewise so that every stage (audit,",
        "training, evaluation, serving) can be tried offline, and it deliberately contains what a real export",
        "contains (PII, duplicates, wrong labels, eval leakage) so that `tunewise data audit` has something real to find.",
        "",
        "## Files",
        "| file | rows | what |",
        "| --- | --- | --- |",
        f"| tickets-train.jsonl | {stats['train_rows']} | training split, OpenAI chat format (system, user, assistant) |",
        f"| tickets-eval.jsonl | {stats['eval_rows']} | held-out eval split, same format |",
        f"| tickets-annotations.csv | {stats['annotation_rows']} | other tickets labelled by three annotators (CSV export) |",
        "| planted.json | - | ground truth of everything planted, by 1-based line number |",
        "",
        "System prompt of every row:",
        "",
        f"> {SYSTEM_PROMPT}",
        "",
        "The assistant reply is the category name only.",
        "",
        "## Categories",
        "| category | meaning | train | eval |",
        "| --- | --- | --- | --- |",
    ]
    for label in LABELS:
        lines.append(f"| {label} | {DESCRIPTIONS[label]} | {stats['train_labels'][label]} | {stats['eval_labels'][label]} |")
    lines += [
        "",
        "Train counts are of the given labels (including the planted wrong ones).",
        "",
        "## How it was generated",
        "",
        f"`python scripts/make_sample_task.py` (seed {seed}; pure Python, `random.Random`, byte-identical on every run).",
        "Tickets are composed from an opener and closer chosen by tone (angry, polite, neutral, terse), one to four",
        "story sentences of the category, up to eight context sentences, concrete details (plan names, amounts,",
        "dates, invoice and order numbers, error messages, browsers, integrations, versions), and noise",
        "(lowercase, dropped punctuation, typos, paragraph breaks). About 8% of tickets borrow a sentence from a",
        "neighbouring category (billing/refund, bug-report/performance, account-access/security,",
        "cancellation/refund, ...), which makes them genuinely ambiguous. A word-3-shingle index rejects any",
        "ticket with Jaccard >= 0.3 to one already made, across all three files, so the only duplicates are the planted ones.",
        "",
        f"User-message length in words (train): min {words[0]}, median {words[len(words) // 2]}, "
        f"p95 {words[int(len(words) * 0.95)]}, max {words[-1]}.",
        "",
        "## What is planted (ground truth in planted.json)",
        "| what | train | eval |",
        "| --- | --- | --- |",
        f"| rows with PII | {len(train['pii'])} | {len(planted['eval']['pii'])} |",
    ]
    for kind in sorted(set(pii_types) | set(eval_types)):
        lines.append(f"| &nbsp;&nbsp;{kind} items | {pii_types[kind]} | {eval_types[kind]} |")
    ann = planted["annotations"]
    lines += [
        f"| near-duplicates (light edits of another train row, word-3-shingle Jaccard > 0.45) | {len(train['near_duplicates'])} | - |",
        f"| exact duplicates (same text up to case/whitespace) | {len(train['exact_duplicates'])} | - |",
        f"| wrong labels (given label differs from the true one) | {len(train['wrong_labels'])} | - |",
        f"| train rows that are near-copies of eval rows (contamination) | {len(train['contamination'])} | - |",
        "",
        "PII is fake but valid-looking: card numbers pass the Luhn check (Visa, Mastercard, Amex, Discover",
        "prefixes), IBANs have correct mod-97 check digits, SSNs follow the SSA rules, phone numbers use US, UK,",
        "German, French, Indian and E.164 formats (US numbers in the fictional 555 range, UK ones in Ofcom's drama ranges).",
        "Each PII entry in planted.json lists the exact text of every item. Hard negatives that must not be",
        "flagged as PII occur naturally: order and invoice numbers, ticket references, versions, prices, dates.",
        "",
        "## Annotations",
        f"{ann['rows']} further tickets with an adjudicated `label` and three annotators' labels. Mean pairwise",
        f"agreement {ann['mean_pairwise_agreement']:.3f} (pairs: "
        + ", ".join(f"{k} {v:.3f}" for k, v in ann["pairwise_agreement"].items())
        + f"), Fleiss' kappa {ann['fleiss_kappa']:.3f}. Annotators disagree more on the ambiguous tickets.",
        "The CSV uses CRLF line ends, quoted multi-line cells, and some non-ASCII text (accents, curly quotes, emoji).",
        "",
        "## Known limitations",
        "- Synthetic: sentences come from a finite set of templates, so a model can learn the templates; accuracy",
        "  here overstates accuracy on a real queue. Use it to exercise the tool, not to judge a model.",
        "- English only (a few non-ASCII names and phrases in the annotation file).",
        "- The label mix is a plausible imbalance chosen by hand, not measured from a real product.",
        "",
    ]
    return "\n".join(lines)


def write(out: Path, seed: int = SEED) -> dict[str, Path]:
    """Write all sample files into `out` and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, content in build(seed).items():
        path = out / name
        path.write_bytes(content.encode("utf-8"))
        paths[name] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "tunewise" / "sample")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    for name, path in write(args.out, args.seed).items():
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
