//! Keys to actions: pure, one table per mode. `text::KEYS` (the help overlay) lists the same keys.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::{Action, Verb};
use super::state::{Mode, Tab};

pub fn action_for(key: KeyEvent, mode: Mode) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Confirm => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        },
        Mode::Help => match key.code {
            KeyCode::Char('?' | 'q') | KeyCode::Esc => Some(Action::ToggleHelp),
            _ => None,
        },
        Mode::Suppressed => match key.code {
            KeyCode::Char('S' | 'q') | KeyCode::Esc => Some(Action::ToggleSuppressed),
            KeyCode::Char('x') if !ctrl && !alt => Some(Action::Unsuppress),
            _ => moving(key, ctrl),
        },
        Mode::FormPicker => match key.code {
            KeyCode::Enter => Some(Action::ApplyForm),
            KeyCode::Char('f' | 'q') | KeyCode::Esc => Some(Action::Cancel),
            _ => moving(key, ctrl),
        },
        Mode::Filter => match key.code {
            KeyCode::Enter => Some(Action::FilterApply),
            KeyCode::Esc => Some(Action::FilterCancel),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char('u') if ctrl => Some(Action::FilterClear),
            KeyCode::Char(c) if !ctrl && !alt => Some(Action::FilterInput(c)),
            _ => None,
        },
        Mode::Detail | Mode::Normal => {
            if let Some(a) = moving(key, ctrl) {
                return Some(a);
            }
            if ctrl || alt {
                return None;
            }
            let detail = mode == Mode::Detail;
            match key.code {
                KeyCode::Char('r') => Some(Action::Verb(Verb::Release)),
                KeyCode::Char('s') => Some(Action::Verb(Verb::Resend)),
                KeyCode::Char('d') => Some(Action::Verb(Verb::Delete)),
                KeyCode::Char('u') => Some(Action::Verb(Verb::Restore)),
                KeyCode::Char('n') => Some(Action::Verb(Verb::NotSpam)),
                KeyCode::Char('?') => Some(Action::ToggleHelp),
                KeyCode::Char('S') => Some(Action::ToggleSuppressed),
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Char('q') if detail => Some(Action::Back),
                KeyCode::Tab if detail => Some(Action::NextDestination),
                KeyCode::BackTab if detail => Some(Action::PrevDestination),
                KeyCode::Char('D') if detail => Some(Action::Redeliver),
                KeyCode::Char('q') => Some(Action::Quit),
                _ if detail => None,
                KeyCode::Enter => Some(Action::Open),
                KeyCode::Char(' ') => Some(Action::ToggleSelect),
                KeyCode::Char('a') => Some(Action::SelectAll),
                KeyCode::Char('/') => Some(Action::StartFilter),
                KeyCode::Char('f') => Some(Action::PickForm),
                KeyCode::Tab => Some(Action::NextTab),
                KeyCode::BackTab => Some(Action::PrevTab),
                KeyCode::Char(c @ '1'..='5') => Tab::ALL.get(c as usize - '1' as usize).map(|&t| Action::GoTab(t)),
                _ => None,
            }
        }
    }
}

/// Moving the cursor (or scrolling the pane): the same keys in the table and the detail pane.
fn moving(key: KeyEvent, ctrl: bool) -> Option<Action> {
    match key.code {
        KeyCode::Char('f') if ctrl => Some(Action::PageDown),
        KeyCode::Char('b') if ctrl => Some(Action::PageUp),
        _ if ctrl => None,
        KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
        KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
        KeyCode::Char('g') | KeyCode::Home => Some(Action::Top),
        KeyCode::Char('G') | KeyCode::End => Some(Action::Bottom),
        KeyCode::PageDown => Some(Action::PageDown),
        KeyCode::PageUp => Some(Action::PageUp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    fn name(a: Option<Action>) -> String {
        format!("{a:?}")
    }

    #[test]
    fn table_keys() {
        let m = Mode::Normal;
        assert_eq!(name(action_for(ch('j'), m)), "Some(Down)");
        assert_eq!(name(action_for(key(KeyCode::Down), m)), "Some(Down)");
        assert_eq!(name(action_for(ch('k'), m)), "Some(Up)");
        assert_eq!(name(action_for(ch('G'), m)), "Some(Bottom)");
        assert_eq!(name(action_for(key(KeyCode::PageDown), m)), "Some(PageDown)");
        assert_eq!(name(action_for(ch('3'), m)), "Some(GoTab(Released))");
        assert_eq!(name(action_for(ch('5'), m)), "Some(GoTab(Spam))");
        assert_eq!(name(action_for(ch('6'), m)), "None");
        assert_eq!(name(action_for(ch('n'), m)), "Some(Verb(NotSpam))");
        assert_eq!(name(action_for(key(KeyCode::BackTab), m)), "Some(PrevTab)");
        assert_eq!(name(action_for(ch('r'), m)), "Some(Verb(Release))");
        assert_eq!(name(action_for(ch('u'), m)), "Some(Verb(Restore))");
        assert_eq!(name(action_for(ch(' '), m)), "Some(ToggleSelect)");
        assert_eq!(name(action_for(key(KeyCode::Enter), m)), "Some(Open)");
        assert_eq!(name(action_for(ch('q'), m)), "Some(Quit)");
        assert_eq!(name(action_for(ch('x'), m)), "None");
    }

    #[test]
    fn ctrl_c_quits_in_every_mode_and_ctrl_letters_are_not_verbs() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for m in [
            Mode::Normal,
            Mode::Filter,
            Mode::Detail,
            Mode::Confirm,
            Mode::Help,
            Mode::Suppressed,
            Mode::FormPicker,
        ] {
            assert_eq!(name(action_for(ctrl_c, m)), "Some(Quit)", "{m:?}");
        }
        let ctrl_d = KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert_eq!(name(action_for(ctrl_d, Mode::Normal)), "None");
        let ctrl_f = KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL);
        assert_eq!(name(action_for(ctrl_f, Mode::Normal)), "Some(PageDown)");
    }

    #[test]
    fn typing_a_filter_takes_every_letter() {
        let m = Mode::Filter;
        assert_eq!(name(action_for(ch('q'), m)), "Some(FilterInput('q'))");
        assert_eq!(name(action_for(ch('d'), m)), "Some(FilterInput('d'))");
        assert_eq!(name(action_for(key(KeyCode::Enter), m)), "Some(FilterApply)");
        assert_eq!(name(action_for(key(KeyCode::Esc), m)), "Some(FilterCancel)");
        assert_eq!(name(action_for(key(KeyCode::Backspace), m)), "Some(FilterBackspace)");
    }

    #[test]
    fn the_dialog_only_knows_yes_and_no() {
        let m = Mode::Confirm;
        assert_eq!(name(action_for(ch('y'), m)), "Some(Confirm)");
        assert_eq!(name(action_for(key(KeyCode::Enter), m)), "Some(Confirm)");
        assert_eq!(name(action_for(ch('n'), m)), "Some(Cancel)");
        assert_eq!(name(action_for(key(KeyCode::Esc), m)), "Some(Cancel)");
        assert_eq!(name(action_for(ch('d'), m)), "None");
        assert_eq!(name(action_for(ch('q'), m)), "None");
    }

    #[test]
    fn in_the_pane_q_goes_back_and_table_only_keys_do_nothing() {
        let m = Mode::Detail;
        assert_eq!(name(action_for(ch('q'), m)), "Some(Back)");
        assert_eq!(name(action_for(key(KeyCode::Esc), m)), "Some(Back)");
        assert_eq!(name(action_for(ch('j'), m)), "Some(Down)");
        assert_eq!(name(action_for(ch('r'), m)), "Some(Verb(Release))");
        assert_eq!(name(action_for(ch(' '), m)), "None");
        assert_eq!(name(action_for(key(KeyCode::Tab), m)), "Some(NextDestination)");
        assert_eq!(name(action_for(key(KeyCode::BackTab), m)), "Some(PrevDestination)");
        assert_eq!(name(action_for(ch('D'), m)), "Some(Redeliver)");
        assert_eq!(name(action_for(ch('D'), Mode::Normal)), "None");
        assert_eq!(name(action_for(ch('?'), Mode::Help)), "Some(ToggleHelp)");
        assert_eq!(name(action_for(ch('j'), Mode::Help)), "None");
    }

    #[test]
    fn shift_s_opens_the_suppressed_addresses_and_x_lifts_one() {
        assert_eq!(name(action_for(ch('S'), Mode::Normal)), "Some(ToggleSuppressed)");
        assert_eq!(name(action_for(ch('S'), Mode::Detail)), "Some(ToggleSuppressed)");
        assert_eq!(name(action_for(ch('s'), Mode::Normal)), "Some(Verb(Resend))");
        let m = Mode::Suppressed;
        for k in [ch('S'), ch('q'), key(KeyCode::Esc)] {
            assert_eq!(name(action_for(k, m)), "Some(ToggleSuppressed)");
        }
        assert_eq!(name(action_for(ch('x'), m)), "Some(Unsuppress)");
        assert_eq!(name(action_for(ch('j'), m)), "Some(Down)");
        assert_eq!(name(action_for(ch('k'), m)), "Some(Up)");
        assert_eq!(name(action_for(ch('r'), m)), "None");
        assert_eq!(name(action_for(ch('d'), m)), "None");
    }

    #[test]
    fn f_opens_the_form_picker_where_enter_applies_and_esc_cancels() {
        assert_eq!(name(action_for(ch('f'), Mode::Normal)), "Some(PickForm)");
        assert_eq!(name(action_for(ch('f'), Mode::Detail)), "None");
        assert_eq!(
            name(action_for(
                KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL),
                Mode::Normal
            )),
            "Some(PageDown)",
            "Ctrl-f still pages"
        );
        let m = Mode::FormPicker;
        assert_eq!(name(action_for(key(KeyCode::Enter), m)), "Some(ApplyForm)");
        for k in [ch('f'), ch('q'), key(KeyCode::Esc)] {
            assert_eq!(name(action_for(k, m)), "Some(Cancel)");
        }
        assert_eq!(name(action_for(ch('j'), m)), "Some(Down)");
        assert_eq!(name(action_for(ch('r'), m)), "None");
        assert_eq!(name(action_for(ch('d'), m)), "None");
    }
}
